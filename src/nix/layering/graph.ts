import { readFile } from 'node:fs/promises';
import { NixregError, describeSystemError, usageError } from '../../errors.js';

/**
 * One node of an `exportReferencesGraph` closure graph (nixpkgs writes it into `.attrs.json` as `graph`).
 * Only `path`, `narSize` and `references` drive the layering; the other fields are kept for callers.
 */
export interface GraphNode {
  path: string;
  narSize: number;
  references: string[];
  closureSize?: number;
  narHash?: string;
}

/**
 * Validate a parsed graph document: a JSON list of nodes, or an object with a `graph` key (`.attrs.json`).
 * The order is kept as given, because auto-layer's tie-breaks depend on it (Nix writes it sorted by path).
 * Every reference must be a node of the graph (exportReferencesGraph is closed under references).
 */
export function parseGraph(doc: unknown, source = 'graph'): GraphNode[] {
  const list = Array.isArray(doc) ? doc : (doc as { graph?: unknown } | null)?.graph;
  if (!Array.isArray(list)) throw usageError(`${source}: expected a JSON list of store paths or an object with a "graph" list`);
  const seen = new Set<string>();
  const nodes: GraphNode[] = list.map((raw, i) => {
    const n = raw as Partial<GraphNode> | null;
    if (!n || typeof n.path !== 'string' || !n.path.startsWith('/')) throw usageError(`${source}: entry ${i} has no absolute "path"`);
    if (typeof n.narSize !== 'number' || !Number.isSafeInteger(n.narSize) || n.narSize < 0) throw usageError(`${source}: ${n.path} has no valid "narSize"`);
    if (!Array.isArray(n.references) || n.references.some((r) => typeof r !== 'string')) throw usageError(`${source}: ${n.path} has no "references" list`);
    if (seen.has(n.path)) throw usageError(`${source}: ${n.path} is listed twice`);
    seen.add(n.path);
    return { ...n, path: n.path, narSize: n.narSize, references: n.references } as GraphNode;
  });
  for (const n of nodes)
    for (const r of n.references)
      if (!seen.has(r)) throw usageError(`${source}: ${n.path} references ${r}, which is not in the graph (the graph must be a closure)`);
  return nodes;
}

export async function readGraphFile(file: string): Promise<GraphNode[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NixregError(`cannot read graph ${file}: ${describeSystemError(err)}`, 2);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw usageError(`graph ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseGraph(doc, `graph ${file}`);
}

/** An exclude file as auto-layer.py reads it: one path per line, each line stripped; blank lines ignored. */
export async function readExcludeFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NixregError(`cannot read exclude file ${file}: ${describeSystemError(err)}`, 2);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Python's `str < str`: code-point order. JS `<` compares UTF-16 units, which differs above U+FFFF. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
