import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { flattenLayers } from '../../src/export/flatten.js';
import { PathIndex } from '../../src/export/path-index.js';
import { encodePythonPaxHeader, endOfArchive, padTo512 } from '../../src/tar/python-pax.js';
import { layer, list, type E } from '../helpers/export-layers.js';
import { FIXTURES } from '../helpers/store-tree.js';

/**
 * The export path index gives the same output whether it stays in memory or lives in its temp file: every
 * stack below is flattened with the index on disk from the first entry (memoryEntries 0) and in memory, and the
 * bytes (or the one-line refusal) must be identical — whiteouts, opaque dirs, duplicates (last entry wins), hard
 * links, hostile layers, the fixture layers and a generated 10^5-entry stack.
 */
async function flattenWith(
  layers: Array<Buffer | (() => AsyncIterable<Buffer>)>,
  memoryEntries?: number,
): Promise<{ sha: string; bytes: number } | { error: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      h.update(c);
      bytes += c.length;
      cb();
    },
  });
  try {
    await flattenLayers(
      {
        layerCount: layers.length,
        openLayer: async (i) => {
          const l = layers[i]!;
          return Buffer.isBuffer(l)
            ? (async function* () {
                for (let o = 0; o < l.length; o += 700) yield l.subarray(o, o + 700);
              })()
            : l();
        },
        layerLabel: (i) => `L${i}`,
        ...(memoryEntries === undefined ? {} : { pathIndex: { memoryEntries } }),
      },
      sink,
    );
  } catch (err) {
    return { error: (err as Error).message };
  }
  return { sha: h.digest('hex'), bytes };
}

const STACKS: Record<string, E[][]> = {
  whiteouts: [
    [{ d: 'etc' }, { f: 'etc/a', data: 'a' }, { f: 'etc/b', data: 'b' }, { d: 'var' }, { f: 'var/x', data: 'x' }],
    [{ f: 'etc/.wh.a' }, { f: 'var/.wh..wh..opq' }, { f: 'var/y', data: 'y' }, { f: 'etc/c', data: 'c' }],
    [{ f: '.wh.var' }, { f: 'etc/b', data: 'B' }],
  ],
  duplicates: [
    [
      { f: 'a', data: '1' },
      { f: 'a', data: '2' },
      { d: 'd', mode: 0o700 },
      { d: 'd', mode: 0o755 },
      { f: 'd/x', data: 'x' },
    ],
    [
      { f: 'b', data: 'b1' },
      { h: 'c', to: 'b' },
      { f: 'b', data: 'b2' },
      { f: 'a', data: '3' },
    ],
  ],
  hardlinks: [
    [
      { f: 'lib/one', data: 'one' },
      { f: 'lib/two', data: 'two' },
    ],
    [{ h: 'lib/link-one', to: 'lib/one' }, { f: 'lib/.wh.two' }, { f: 'x', data: 'x' }, { h: 'y', to: 'x' }],
    [{ f: 'x', data: 'X' }],
  ],
  'hostile: write through a symlink': [
    [
      { s: 'a', to: '/etc' },
      { f: 'a/passwd', data: 'root' },
    ],
  ],
  'hostile: link to a deleted target': [[{ f: 't', data: 't' }], [{ f: '.wh.t' }], [{ h: 'l', to: 't' }]],
  'hostile: dir and file in one layer': [[{ d: 'p' }, { f: 'p', data: 'x' }]],
};

/** `n` files in n/1000 directories, every 7th repeated, every 11th whited out by a second layer, an opaque dir. */
function generated(n: number): Array<() => AsyncIterable<Buffer>> {
  const entry = (name: string, data: string): Buffer => {
    const d = Buffer.from(data);
    return Buffer.concat([
      encodePythonPaxHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: d.length }),
      d,
      Buffer.alloc(padTo512(d.length)),
    ]);
  };
  const dir = (name: string) => encodePythonPaxHeader({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 0 });
  async function* lower() {
    let off = 0;
    for (let i = 0; i < n; i++) {
      const d = `usr/share/d${Math.floor(i / 1000)}`;
      const parts = [i % 1000 === 0 ? dir(d) : Buffer.alloc(0), entry(`${d}/f${i}`, `v${i}`)];
      if (i % 7 === 0) parts.push(entry(`${d}/f${i}`, `again${i}`));
      const b = Buffer.concat(parts);
      off += b.length;
      yield b;
    }
    yield endOfArchive(off);
  }
  async function* upper() {
    let off = 0;
    for (let i = 0; i < n; i += 11) {
      const b = entry(`usr/share/d${Math.floor(i / 1000)}/.wh.f${i}`, '');
      off += b.length;
      yield b;
    }
    const opq = Buffer.concat([entry('usr/share/d3/.wh..wh..opq', ''), entry('usr/share/d3/new', 'new')]);
    yield opq;
    yield endOfArchive(off + opq.length);
  }
  return [lower, upper];
}

describe('export path index: on disk and in memory give the same bytes', () => {
  for (const [name, stack] of Object.entries(STACKS))
    it(name, async () => {
      const layers = stack.map((l) => layer(...l));
      const mem = await flattenWith(layers);
      expect(await flattenWith(layers, 0)).toEqual(mem);
      expect(await flattenWith(layers, 2)).toEqual(mem);
    });

  it('the fixture layers', async () => {
    const dir = join(FIXTURES, 'docker-archive');
    const layers = readdirSync(dir)
      .filter((f) => /^tiny-layer-.*\.tar$/.test(f))
      .sort()
      .map((f) => readFileSync(join(dir, f)));
    expect(layers.length).toBeGreaterThan(1);
    const mem = await flattenWith(layers);
    expect('sha' in mem).toBe(true);
    expect(await flattenWith(layers, 0)).toEqual(mem);
  });

  it('a generated 10^5-entry stack with duplicates, whiteouts and an opaque directory', async () => {
    const layers = generated(100_000);
    const mem = await flattenWith(layers, Number.MAX_SAFE_INTEGER);
    expect('sha' in mem).toBe(true);
    expect(await flattenWith(layers, 1000)).toEqual(mem);
  }, 300_000);
});

/** 10^4 directories (nested, some listed twice with other modes, names in several scripts, xattrs) over two layers. */
function manyDirs(n: number): Array<() => AsyncIterable<Buffer>> {
  const dir = (name: string, mode: number, xattr?: string) =>
    encodePythonPaxHeader({
      name,
      type: 'dir',
      mode,
      uid: 0,
      gid: 0,
      mtime: 1,
      size: 0,
      ...(xattr ? { paxHeaders: [['SCHILY.xattr.user.note', Buffer.from(xattr)]] as Array<[string, Buffer]> } : {}),
    });
  const file = (name: string) => encodePythonPaxHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 0 });
  const names = (i: number) => [`srv/${i % 97}`, `srv/${i % 97}/d-${i}`, `srv/${i % 97}/d-${i}/ü-${i}-日本`];
  function tarOf(parts: Buffer[]): Buffer {
    const b = Buffer.concat(parts);
    return Buffer.concat([b, endOfArchive(b.length)]);
  }
  const lower = () => {
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      for (const d of names(i)) parts.push(dir(d, 0o755, i % 13 === 0 ? `x${i}` : undefined));
      if (i % 5 === 0) parts.push(dir(names(i)[1]!, 0o700)); // listed again: the last header wins
      parts.push(file(`${names(i)[2]}/f`));
    }
    return tarOf(parts);
  };
  const upper = () => {
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i += 3) parts.push(dir(names(i)[1]!, 0o711, `up${i}`));
    for (let i = 1; i < n; i += 17) parts.push(file(`${names(i)[1]}/.wh..wh..opq`));
    parts.push(file('orphan/parent/file')); // parents no layer lists
    return tarOf(parts);
  };
  const stream = (make: () => Buffer) =>
    async function* () {
      const b = make();
      for (let o = 0; o < b.length; o += 1 << 16) yield b.subarray(o, o + (1 << 16));
    };
  return [stream(lower), stream(upper)];
}

describe('export directory headers: spilled to run files and merged, the same bytes', () => {
  it('10^4 directories, repeated headers, xattrs and non-ASCII names', async () => {
    const layers = manyDirs(10_000);
    const mem = await flattenWith(layers, Number.MAX_SAFE_INTEGER);
    expect('sha' in mem).toBe(true);
    // each directory once, with its last header (upper layer's 0o711 over the repeated 0o700 over 0o755)
    const chunks: Buffer[] = [];
    await flattenLayers(
      { layerCount: 2, openLayer: async (i) => layers[i]!(), layerLabel: (i) => `L${i}`, pathIndex: { memoryEntries: 1000 } },
      new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }),
    );
    const dirs = (await list(Buffer.concat(chunks))).filter((e) => e.type === 'directory');
    expect(new Set(dirs.map((d) => d.name)).size).toBe(dirs.length);
    const modeOf = (i: number) => dirs.find((d) => d.name === `srv/${i % 97}/d-${i}/`)?.mode;
    expect([modeOf(3), modeOf(5), modeOf(15), modeOf(7)]).toEqual([0o711, 0o700, 0o711, 0o755]);
    expect(await flattenWith(layers, 1000)).toEqual(mem); // 30 runs: merged into one at 16
    expect(await flattenWith(layers, 200)).toEqual(mem);
  }, 300_000);
});

describe('PathIndex', () => {
  it('keeps every value across the move to disk and its growth, and merges by or', () => {
    const a = new PathIndex({ memoryEntries: 10, tmpDir: tmpdir() });
    const b = a.sibling();
    for (let i = 0; i < 5000; i++) a.set(`p/${i}`, i);
    for (let i = 0; i < 5000; i += 2) b.or(`p/${i}`, 1 << 20);
    b.set('only-b', 7);
    a.orAll(b);
    const wrong: string[] = [];
    for (let i = 0; i < 5000; i++) if (a.get(`p/${i}`) !== (i % 2 ? i : (i | (1 << 20)) >>> 0)) wrong.push(`p/${i}`);
    expect(wrong).toEqual([]);
    expect([a.get('only-b'), a.get('missing'), a.size]).toEqual([7, undefined, 5001]);
    a.close();
    b.close();
  });
});
