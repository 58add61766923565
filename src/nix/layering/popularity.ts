import { compareCodePoints, type GraphNode } from './graph.js';

/**
 * Port of nixpkgs' `closure-graph.py` (referencesByPopularity), the 2018-2024 streamLayeredImage layering, plus the
 * jq split of that era. The graph is unfolded into a tree from each root and every occurrence counts, so counts grow
 * exponentially with depth and fan-in: they are BigInt (a 64-level ladder already exceeds float64 precision).
 * Memory is what the script uses too: one count map per distinct path (memoised), never the unfolded tree.
 */
export interface PopularityResult {
  roots: string[];
  popularity: Map<string, bigint>;
  /** the script's output: most popular first, ties by package_name. */
  order: string[];
}

/** closure-graph.py's package_name: the first `-`-separated segment (`/nix/store/<hash>`) moved to the end. */
export function packageName(p: string): string {
  const parts = p.split('-');
  const first = parts.shift()!;
  parts.push(first);
  return parts.join('-');
}

export function popularityContest(graph: GraphNode[]): PopularityResult {
  const referenced = new Set<string>();
  for (const n of graph) for (const r of n.references) if (r !== n.path) referenced.add(r);
  const roots = graph.map((n) => n.path).filter((p) => !referenced.has(p));
  const lookup = new Map(graph.map((n) => [n.path, n.references.filter((r) => r !== n.path)]));

  // count(p) = the contest over p's subtree: Σ over children c of ([x==c] + (count(c)[x] + 1 if x in count(c))).
  // Iterative post-order so deep chains cannot overflow the JS stack; the graph is a DAG apart from self-edges.
  const memo = new Map<string, Map<string, bigint>>();
  const contestOf = (children: Iterable<string>): Map<string, bigint> => {
    const out = new Map<string, bigint>();
    for (const c of children) {
      out.set(c, (out.get(c) ?? 0n) + 1n);
      for (const [x, k] of memo.get(c)!) out.set(x, (out.get(x) ?? 0n) + k + 1n);
    }
    return out;
  };
  const ensure = (start: string) => {
    const stack: [string, boolean][] = [[start, false]];
    const onStack = new Set<string>();
    while (stack.length) {
      const [p, expanded] = stack.pop()!;
      if (memo.has(p)) continue;
      if (expanded) {
        memo.set(p, contestOf(lookup.get(p) ?? []));
        onStack.delete(p);
        continue;
      }
      if (onStack.has(p)) throw new Error(`popularity: reference cycle through ${p}`);
      onStack.add(p);
      stack.push([p, true]);
      for (const c of lookup.get(p) ?? []) if (!memo.has(c)) stack.push([c, false]);
    }
  };
  for (const r of roots) ensure(r);
  const popularity = contestOf(roots.map((r) => r));

  const order = [...popularity.keys()].sort((a, b) => {
    const pa = popularity.get(a)!;
    const pb = popularity.get(b)!;
    if (pa !== pb) return pa > pb ? -1 : 1;
    return compareCodePoints(packageName(a), packageName(b));
  });
  // The script appends paths that no root reaches; impossible for a closed graph, kept for fidelity (sorted).
  const listed = new Set(order);
  const missing = new Set<string>();
  for (const n of graph) for (const p of [n.path, ...n.references]) if (!listed.has(p)) missing.add(p);
  order.push(...[...missing].sort(compareCodePoints));
  return { roots, popularity, order };
}

/**
 * The 2020-2024 conf derivation's split of the popularity list: excluded paths removed the way `grep -v PATH` removes
 * them (any line containing the path; store paths have no regex-special characters that matter), then the first
 * N−1 paths get a layer each and ALL remaining paths share the last layer, in popularity order.
 */
export function popularityLayers(order: string[], exclude: Iterable<string>, availableLayers: number): string[][] {
  const ex = [...exclude].filter((e) => e !== '');
  const kept = order.filter((p) => !ex.some((e) => p.includes(e)));
  const head = kept.slice(0, Math.max(0, availableLayers - 1)).map((p) => [p]);
  const rest = kept.slice(Math.max(0, availableLayers - 1));
  return [...head, rest].filter((l) => l.length > 0);
}
