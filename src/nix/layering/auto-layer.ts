import { compareCodePoints, type GraphNode } from './graph.js';

/**
 * Port of nixpkgs' `pkgs/build-support/docker/auto-layer.py` (the streamLayeredImage default since https://github.com/NixOS/nixpkgs/pull/355189).
 *
 * Each path is mapped to the set of "primary" paths that own it; paths with the same set form one layer. The largest
 * paths (by narSize) become primaries one by one until one more would exceed `layerLimit` distinct layers.
 * Sets are kept as sorted arrays of node indices so that "distinct layers" is a cheap string-key count.
 *
 * TIE-BREAK (the one place this port cannot match CPython): the final layer order is a stable sort by closureSize
 * of a Python `set` of frozensets, so layers with an EXACTLY equal closureSize come out in CPython's hash-table order
 * (PYTHONHASHSEED=0, not reproducible here). We order such ties by the layer's first path in the layer's own
 * sort order (name after the hash, then the hash; see pathKey). Layers are disjoint, so this is total and stable
 * across runs and machines. No other step depends on set order: everything else is reproduced exactly.
 */
export interface AutoLayerInfo {
  usedBy: string[];
  paths: string[];
  layerSize: number;
  closureSize: number;
}

export interface AutoLayerResult {
  /** store_layers: layer path lists (bottom first) with excluded paths removed and emptied layers dropped. */
  layers: string[][];
  /** the script's DEBUG dump: every layer before exclusion, in output order. */
  layerOrder: AutoLayerInfo[];
}

/** auto-layer.py's path_key: `hash, name = path.split("-", 1)`; sort by (name, hash). */
export function comparePathKey(a: string, b: string): number {
  const [ha, na] = splitHash(a);
  const [hb, nb] = splitHash(b);
  return compareCodePoints(na, nb) || compareCodePoints(ha, hb);
}

function splitHash(p: string): [string, string] {
  const i = p.indexOf('-');
  return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
}

export function autoLayer(graph: GraphNode[], exclude: Iterable<string>, layerLimit: number): AutoLayerResult {
  const ignore = new Set(exclude);
  const n = graph.length;
  const index = new Map<string, number>();
  graph.forEach((node, i) => index.set(node.path, i));
  const deps: number[][] = graph.map((node) => node.references.map((r) => index.get(r)!));
  const users: number[][] = graph.map(() => []);
  deps.forEach((refs, user) => {
    for (const r of refs) if (!users[r]!.includes(user)) users[r]!.push(user);
  });

  // closure(p) minus p, along `edges` (references or users); self-edges are naturally ignored.
  const reachable = (start: number, edges: number[][]): Set<number> => {
    const done = new Set<number>([start]);
    const todo = [start];
    while (todo.length) for (const x of edges[todo.pop()!]!) if (!done.has(x)) done.add(x), todo.push(x);
    done.delete(start);
    return done;
  };
  const keyOf = (s: readonly number[]) => s.join(',');
  const layerCount = (split: readonly (readonly number[])[]) => new Set(split.map(keyOf)).size;

  // Python's sorted() is stable: equal narSizes keep graph order, and pop() takes the last one first.
  const bySize = graph.map((_, i) => i).sort((a, b) => graph[a]!.narSize - graph[b]!.narSize);
  let split: number[][] = graph.map(() => []);
  while (bySize.length) {
    const primary = bySize.pop()!;
    const next = split.slice();
    next[primary] = [primary];
    const primaryDeps = reachable(primary, deps);
    const primaryUsers = reachable(primary, users);
    for (const d of primaryDeps) {
      const owners = next[d]!.filter((x) => !primaryUsers.has(x));
      next[d] = owners.some((x) => primaryDeps.has(x)) ? owners : insertSorted(owners, primary);
    }
    if (layerCount(next) > layerLimit) break;
    split = next;
  }

  const groups = new Map<string, { usedBy: number[]; members: number[] }>();
  split.forEach((owners, i) => {
    const k = keyOf(owners);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { usedBy: owners, members: [] }));
    g.members.push(i);
  });
  const pathsOf = (ix: number[]) => ix.map((i) => graph[i]!.path).sort(comparePathKey);
  const infos: AutoLayerInfo[] = [...groups.values()].map((g) => {
    const closure = new Set<number>();
    for (const m of g.members) {
      closure.add(m);
      for (const d of reachable(m, deps)) closure.add(d);
    }
    let closureSize = 0;
    for (const c of closure) closureSize += graph[c]!.narSize;
    return {
      usedBy: pathsOf(g.usedBy),
      paths: pathsOf(g.members),
      layerSize: g.members.reduce((s, m) => s + graph[m]!.narSize, 0),
      closureSize,
    };
  });
  // Tie-break first (see header comment), then the script's stable closureSize sort.
  infos.sort((a, b) => comparePathKey(a.paths[0]!, b.paths[0]!));
  infos.sort((a, b) => a.closureSize - b.closureSize);

  const total = graph.reduce((s, x) => s + x.narSize, 0);
  const covered = infos.reduce((s, x) => s + x.layerSize, 0);
  if (total !== covered || n !== infos.reduce((s, x) => s + x.paths.length, 0))
    throw new Error(`auto-layer: layers cover ${covered} bytes but the graph has ${total}`);

  const layers = infos.map((l) => l.paths.filter((p) => !ignore.has(p))).filter((l) => l.length > 0);
  return { layers, layerOrder: infos };
}

function insertSorted(xs: number[], x: number): number[] {
  if (xs.includes(x)) return xs;
  const out = [...xs, x];
  out.sort((a, b) => a - b);
  return out;
}
