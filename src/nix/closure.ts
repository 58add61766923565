import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parseSha256, toNix32 } from '../digest/nixhash.js';
import { NixregError, oneLine, usageError } from '../errors.js';
import { compareCodePoints, type GraphNode } from './layering/graph.js';

const run = promisify(execFile);

/**
 * The closure graph of `roots` from the local Nix store, in exportReferencesGraph's shape: one node per path,
 * sorted by path, `narHash` as `sha256:<nix32>`, references sorted (self included, as Nix reports them) and
 * `closureSize` summed over the closure. This is what nixpkgs feeds auto-layer.py, so the layering matches.
 *
 * One `nix path-info --json --recursive` call gives everything; when the `nix` command is unavailable or refuses
 * (older/newer CLI, experimental features locked down), fall back to the stable `nix-store --query` interface.
 */
export async function closureGraph(roots: string[]): Promise<GraphNode[]> {
  if (roots.length === 0) throw usageError('no store paths given');
  const resolved = await Promise.all(roots.map(resolveRoot));
  let nodes: GraphNode[];
  try {
    nodes = await viaPathInfo(resolved);
  } catch (err) {
    if (err instanceof NixregError) throw err;
    nodes = await viaNixStore(resolved);
  }
  return finishGraph(nodes);
}

/** `./result` and other GC-root symlinks point into the store; Nix wants the store path itself. */
export async function resolveRoot(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    throw usageError(`store path ${p} does not exist`);
  }
}

async function viaPathInfo(roots: string[]): Promise<GraphNode[]> {
  const out = await nix('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', '--', ...roots], false);
  const list = JSON.parse(out) as { path: string; narHash: string; narSize: number; references: string[]; valid?: boolean }[];
  const invalid = list.find((x) => x.valid === false || typeof x.narSize !== 'number');
  if (invalid) throw usageError(`${invalid.path} is not a valid path in the Nix store (build it first)`);
  return list.map((x) => ({ path: x.path, narHash: nixBase32Hash(x.narHash), narSize: x.narSize, references: x.references }));
}

async function viaNixStore(roots: string[]): Promise<GraphNode[]> {
  const paths = lines(await nix('nix-store', ['--query', '--requisites', '--', ...roots], true));
  const sizes = lines(await nix('nix-store', ['--query', '--size', '--', ...paths], true));
  const hashes = lines(await nix('nix-store', ['--query', '--hash', '--', ...paths], true));
  // `--references` with several paths prints their union, so it is asked per path (8 at a time).
  const refs: string[][] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      refs[i] = lines(await nix('nix-store', ['--query', '--references', '--', paths[i]!], true));
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, paths.length) }, worker));
  return paths.map((path, i) => ({ path, narSize: Number(sizes[i]), narHash: nixBase32Hash(hashes[i]!), references: refs[i]! }));
}

function finishGraph(nodes: GraphNode[]): GraphNode[] {
  const byPath = new Map(nodes.map((n) => [n.path, n]));
  const sorted = [...byPath.values()].sort((a, b) => compareCodePoints(a.path, b.path));
  return sorted.map((n) => {
    const seen = new Set<string>([n.path]);
    const todo = [n.path];
    let closureSize = 0;
    while (todo.length) {
      const p = todo.pop()!;
      const node = byPath.get(p);
      if (!node) throw new NixregError(`Nix reported ${n.path} referencing ${p}, which is not in its closure`);
      closureSize += node.narSize;
      for (const r of node.references) if (!seen.has(r)) seen.add(r), todo.push(r);
    }
    // exportReferencesGraph key order (alphabetical), so the graph can be written out as nixpkgs would.
    return { closureSize, narHash: n.narHash, narSize: n.narSize, path: n.path, references: [...n.references].sort(compareCodePoints) };
  });
}

/** path-info prints SRI, nix-store `sha256:<nix32>`; exportReferencesGraph uses the latter. */
function nixBase32Hash(h: string): string {
  try {
    return `sha256:${toNix32(parseSha256(h))}`;
  } catch {
    return h;
  }
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

/** Run a Nix command; with `final`, a failure is the user's problem (one line from Nix's own message). */
async function nix(cmd: string, args: string[], final: boolean): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 1 << 30, encoding: 'utf8' });
    return stdout;
  } catch (err) {
    const e = err as { code?: string | number; stderr?: string };
    if (!final) throw err;
    if (e.code === 'ENOENT') throw usageError(`${cmd} not found: install Nix, or pass the closure graph with --graph`);
    const msg = (e.stderr ?? '')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('warning:'))
      .join(' ');
    throw new NixregError(`${cmd} failed: ${oneLine(msg) || String(err)}`);
  }
}
