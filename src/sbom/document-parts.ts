import { parseSha256, toHex } from '../digest/nixhash.js';
import { createHash } from 'node:crypto';
import { parseDrvName, storePathName } from './store-name.js';
import type { SbomInput, SbomLayer, SbomPath } from './model.js';

/** One store path with everything a document says about it, in a fixed order. */
export interface PathFacts extends SbomPath {
  name: string;
  version: string;
  layer?: SbomLayer;
  layerIndex?: number;
}

/** The input's store paths sorted by path, each with its parsed name and the layer that holds it. */
export function pathFacts(input: SbomInput): PathFacts[] {
  const where = new Map<string, number>();
  input.layers.forEach((l, i) => l.paths.forEach((p) => where.has(p) || where.set(p, i)));
  const known = new Set(input.paths.map((p) => p.path));
  return [...input.paths]
    .sort((a, b) => compareCodePoints(a.path, b.path))
    .map((p) => {
      const i = where.get(p.path);
      const references = [...new Set(p.references)].filter((r) => r !== p.path && known.has(r)).sort(compareCodePoints);
      return { ...p, references, ...parseDrvName(storePathName(p.path)), ...(i !== undefined ? { layer: input.layers[i], layerIndex: i } : {}) };
    });
}

/** Paths no other path of the image references: what the image was asked to contain. */
export function topLevel(facts: PathFacts[]): string[] {
  const referenced = new Set(facts.flatMap((f) => f.references));
  return facts.map((f) => f.path).filter((p) => !referenced.has(p));
}

/** A UUID (version 5 layout, RFC 9562) derived from the bytes: the same document gives the same serial number. */
export function contentUuid(bytes: string): string {
  const h = createHash('sha256').update(bytes).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A NAR hash in any of Nix's spellings (`sha256:<nix32>`, `sha256:<hex>`, SRI) as lowercase hex; undefined if unreadable. */
export function narHashHex(h: string | undefined): string | undefined {
  if (!h) return undefined;
  try {
    return toHex(parseSha256(h));
  } catch {
    return undefined;
  }
}

/** `NAME[:TAG]` → name and tag (a port in the registry part is not a tag). */
export function splitImage(image: string): { name: string; tag?: string } {
  const at = image.split('@')[0]!;
  const colon = at.lastIndexOf(':');
  return colon > at.lastIndexOf('/') ? { name: at.slice(0, colon), tag: at.slice(colon + 1) } : { name: at };
}

/** Order by UTF-16 code units, like Python's and Nix's string sort for the ASCII store paths. */
export const compareCodePoints = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const jsonBytes = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc, null, 2) + '\n');
