import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  autoLayer,
  availableLayers,
  comparePathKey,
  computeStoreLayers,
  packageName,
  parseGraph,
  popularityContest,
  popularityLayers,
  type GraphNode,
} from '../../src/nix/layering/index.js';
import { compareCodePoints } from '../../src/nix/layering/graph.js';
import { NixregError } from '../../src/errors.js';

const dir = join(import.meta.dirname, '../fixtures/layering');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const load = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));

describe('layering fixtures (nixpkgs reference outputs)', () => {
  it('has all fixture files', () => expect(files.length).toBe(23));

  for (const f of files) {
    it(f, () => {
      const fx = load(f);
      const graph = parseGraph(fx.graph);
      expect(availableLayers(fx.maxLayers, fx.fromImageLayers)).toBe(fx.availableLayers);
      const algorithm = fx.algorithm === 'popularity' ? 'popularity' : 'auto';
      const layers = computeStoreLayers(graph, { maxLayers: fx.maxLayers, fromImageLayers: fx.fromImageLayers, algorithm, exclude: fx.exclude });
      expect(layers).toEqual(fx.store_layers);
      if (algorithm === 'auto') {
        const r = autoLayer(graph, fx.exclude, fx.availableLayers);
        expect(r.layers).toEqual(JSON.parse(fx.stdout));
        expect(r.layerOrder).toEqual(fx.debugLayerOrder);
      } else {
        const r = popularityContest(graph);
        expect(r.roots).toEqual(fx.roots);
        expect(r.order).toEqual(fx.popularityOrder);
        const expected = new Map(Object.entries(fx.popularity as Record<string, string>).map(([k, v]) => [k, BigInt(v)]));
        expect(r.popularity).toEqual(expected);
        expect(popularityLayers(r.order, fx.exclude, fx.availableLayers).flat()).toEqual(fx.popularityOrderFiltered);
      }
    });
  }

  it('deep chain popularity exceeds float64 precision and still orders correctly', () => {
    const fx = load('synthetic-deep-chain-popularity-200.json');
    const r = popularityContest(parseGraph(fx.graph));
    // biome-ignore lint/complexity/useMathMinMax: the values are BigInts, which Math.max does not take
    const max = [...r.popularity.values()].reduce((a, b) => (a > b ? a : b));
    expect(max > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
  });
});

describe('popularity contest', () => {
  const node = (path: string, references: string[]): GraphNode => ({ path, narSize: 1, references });
  it("reproduces closure-graph.py's own test: foo 1, bar 2, baz 4, tux 6", () => {
    const g = [
      node('/nix/store/foo', ['/nix/store/foo', '/nix/store/bar', '/nix/store/baz']),
      node('/nix/store/bar', ['/nix/store/baz']),
      node('/nix/store/baz', ['/nix/store/tux']),
      node('/nix/store/tux', []),
    ];
    const r = popularityContest(g);
    expect(Object.fromEntries(r.popularity)).toEqual({ '/nix/store/foo': 1n, '/nix/store/bar': 2n, '/nix/store/baz': 4n, '/nix/store/tux': 6n });
    expect(r.order).toEqual(['/nix/store/tux', '/nix/store/baz', '/nix/store/bar', '/nix/store/foo']);
  });
  it('package_name moves the hash to the end', () => {
    expect(packageName('/nix/store/abc-hello-2.10')).toBe('hello-2.10-/nix/store/abc');
  });
  it('split: first N-1 alone, the rest together; grep -v substring exclusion', () => {
    expect(popularityLayers(['a', 'b', 'c', 'd'], [], 3)).toEqual([['a'], ['b'], ['c', 'd']]);
    expect(popularityLayers(['a', 'b'], [], 1)).toEqual([['a', 'b']]);
    expect(popularityLayers(['a', 'b'], [], 5)).toEqual([['a'], ['b']]);
    expect(popularityLayers(['/x/a-1', '/x/b-closure', 'c'], ['closure'], 5)).toEqual([['/x/a-1'], ['c']]);
  });
});

describe('auto-layer details', () => {
  it('orders exact closureSize ties by the documented tie-break (first path by name, then hash)', () => {
    const g: GraphNode[] = [
      { path: '/nix/store/aaa-zeta', narSize: 5, references: [] },
      { path: '/nix/store/bbb-alpha', narSize: 5, references: [] },
      { path: '/nix/store/ccc-mid', narSize: 5, references: [] },
    ];
    expect(autoLayer(g, [], 10).layers).toEqual([['/nix/store/bbb-alpha'], ['/nix/store/ccc-mid'], ['/nix/store/aaa-zeta']]);
    expect(autoLayer([...g].reverse(), [], 10).layers).toEqual(autoLayer(g, [], 10).layers);
  });
  it('excluded paths take part in the algorithm but are removed from the output', () => {
    const g: GraphNode[] = [
      { path: '/nix/store/a-root', narSize: 100, references: ['/nix/store/b-lib'] },
      { path: '/nix/store/b-lib', narSize: 10, references: [] },
    ];
    expect(autoLayer(g, ['/nix/store/a-root'], 1).layers).toEqual([['/nix/store/b-lib']]);
    expect(autoLayer(g, ['/nix/store/a-root'], 5).layers).toEqual([['/nix/store/b-lib']]);
    expect(autoLayer(g, [], 5).layers).toEqual([['/nix/store/b-lib'], ['/nix/store/a-root']]);
    expect(autoLayer(g, [], 1).layers).toEqual([['/nix/store/b-lib', '/nix/store/a-root']]);
  });
  it('path_key sorts by name, then hash', () => {
    expect(['/nix/store/b-a', '/nix/store/a-b', '/nix/store/a-a'].sort(comparePathKey)).toEqual(['/nix/store/a-a', '/nix/store/b-a', '/nix/store/a-b']);
  });
  it('compares strings by code point like Python', () => {
    expect(compareCodePoints('\u{1F680}', '\uFF5A')).toBe(1);
    expect(compareCodePoints('a', 'ab')).toBe(-1);
  });
});

describe('limits and input errors', () => {
  it('maxLayers < 2 and budgets without a store layer are usage errors', () => {
    for (const [m, k] of [
      [1, 0],
      [0, 0],
      [3, 2],
      [2, 1],
    ] as const) {
      try {
        availableLayers(m, k);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(NixregError);
        expect((e as NixregError).exitCode).toBe(2);
      }
    }
    expect(availableLayers(2, 0)).toBe(1);
  });
  it('accepts .attrs.json shape and rejects open graphs', () => {
    expect(parseGraph({ graph: [{ path: '/nix/store/a-x', narSize: 1, references: [] }] })).toHaveLength(1);
    expect(() => parseGraph([{ path: '/nix/store/a-x', narSize: 1, references: ['/nix/store/b-y'] }])).toThrow(/not in the graph/);
    expect(() => parseGraph({ nope: 1 })).toThrow(/expected a JSON list/);
  });
});
