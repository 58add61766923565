import { createHash } from 'node:crypto';
import { toNix32 } from '../../digest/nixhash.js';
import type { GraphNode } from '../layering/graph.js';
import { compareCodePoints } from '../layering/graph.js';

/**
 * In nixpkgs the layering graph is the closure of `[ baseJson customisationLayer ]` (plus the `closure` file in the
 * popularity era), and those helper paths are then excluded from the output. They still take part in the
 * algorithm (auto-layer: as primaries; popularity: as the roots), so we add stand-ins with the same references and
 * the NAR sizes the real store paths would have. Their hashes are synthetic; they never reach the output.
 */
export interface ImageNodes {
  nodes: GraphNode[];
  exclude: string[];
}

/** Size of a NAR string field: 8-byte length + bytes padded to 8. */
const str = (len: number) => 8 + Math.ceil(len / 8) * 8;
const tokens = (...ss: string[]) => ss.reduce((s, x) => s + str(Buffer.byteLength(x)), 0);

/** NAR size of a regular (non-executable) file with `size` bytes. */
export function narSizeOfFile(size: number): number {
  return tokens('nix-archive-1') + regularNode(size);
}

function regularNode(size: number): number {
  return tokens('(', 'type', 'regular', 'contents') + str(size) + tokens(')');
}

/** NAR size of a flat directory of regular files, given as name → size. */
export function narSizeOfDir(files: Record<string, number>): number {
  let n = tokens('nix-archive-1', '(', 'type', 'directory');
  for (const name of Object.keys(files).sort()) n += tokens('entry', '(', 'name', name, 'node') + regularNode(files[name]!) + tokens(')');
  return n + tokens(')');
}

function fakeStorePath(storeDir: string, seed: string, name: string): string {
  const d = createHash('sha256').update(seed).digest();
  const c = Buffer.alloc(20);
  for (let i = 0; i < d.length; i++) c[i % 20]! ^= d[i]!;
  return `${storeDir}/${toNix32(c)}-${name}`;
}

export function imageNodes(opts: {
  storeDir: string;
  baseName: string;
  baseJson: string;
  configRefs: string[];
  customisationTarSize: number;
  customisationChecksum: string;
  contentRefs: string[];
  popularity: boolean;
}): ImageNodes {
  const base: GraphNode = {
    path: fakeStorePath(opts.storeDir, opts.baseJson, `${opts.baseName}-base.json`),
    narSize: narSizeOfFile(Buffer.byteLength(opts.baseJson)),
    references: [...opts.configRefs].sort(compareCodePoints),
  };
  const cust: GraphNode = {
    path: fakeStorePath(opts.storeDir, opts.customisationChecksum, `${opts.baseName}-customisation-layer`),
    narSize: narSizeOfDir({ checksum: 65, 'layer.tar': opts.customisationTarSize }),
    references: [...opts.contentRefs].sort(compareCodePoints),
  };
  const nodes = [base, cust];
  if (opts.popularity) {
    // writeText "closure" "<baseJson> <customisationLayer>" (the 2020-2024 root)
    const text = `${base.path} ${cust.path}`;
    nodes.push({
      path: fakeStorePath(opts.storeDir, text, 'closure'),
      narSize: narSizeOfFile(Buffer.byteLength(text)),
      references: [base.path, cust.path].sort(compareCodePoints),
    });
  }
  return { nodes, exclude: nodes.map((n) => n.path) };
}
