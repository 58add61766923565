import { describe, expect, it } from 'vitest';
import { byName, flatten, layer, list, names } from '../helpers/export-layers.js';

describe('export: flattening layers', () => {
  it('applies whiteouts (file and whole directory) and never outputs the whiteout entries', async () => {
    const l0 = layer({ d: 'a' }, { f: 'a/x', data: 'x' }, { f: 'a/y', data: 'y' }, { d: 'b' }, { f: 'b/deep', data: 'z' }, { f: 'c', data: 'c' });
    const l1 = layer({ f: 'a/.wh.x' }, { f: '.wh.b' });
    const es = await list((await flatten([l0, l1])).tar);
    expect(names(es).sort()).toEqual(['a/', 'a/y', 'c']);
    expect(byName(es, 'a/y').data).toBe('y');
  });

  it('honours opaque directories: lower children hidden, the dir metadata and new children from the opaque layer', async () => {
    const l0 = layer({ d: 'd', mode: 0o700, uid: 5 }, { f: 'd/old', data: 'old' }, { d: 'd/sub' }, { f: 'd/sub/f' }, { f: 'keep', data: 'k' });
    const l1 = layer({ d: 'd', mode: 0o750, uid: 7 }, { f: 'd/.wh..wh..opq' }, { f: 'd/new', data: 'new' });
    const es = await list((await flatten([l0, l1])).tar);
    expect(names(es).sort()).toEqual(['d/', 'd/new', 'keep']);
    expect(byName(es, 'd/')).toMatchObject({ mode: 0o750, uid: 7 });
  });

  it('opaque marker only hides LOWER layers, not its own layer, and a root opaque hides everything below', async () => {
    const l0 = layer({ f: 'gone', data: '1' });
    const l1 = layer({ f: 'here', data: '2' }, { f: '.wh..wh..opq' });
    expect(names(await list((await flatten([l0, l1])).tar))).toEqual(['here']);
    // a whiteout of a path that the same layer creates only deletes the lower one
    const l2 = layer({ f: '.wh.x' }, { f: 'x', data: 'new' });
    const es = await list((await flatten([layer({ f: 'x', data: 'old' }), l2])).tar);
    expect(es.map((e) => [e.name, e.data])).toEqual([['x', 'new']]);
  });

  it('keeps directory metadata from the topmost layer that has the directory, once', async () => {
    const l0 = layer({ d: 'etc', mode: 0o700, uid: 1, gid: 1, mtime: 1 }, { f: 'etc/a' });
    const l1 = layer({ d: 'etc', mode: 0o755, uid: 2, gid: 3, mtime: 99 }, { f: 'etc/b' });
    const es = await list((await flatten([l0, l1])).tar);
    expect(es.filter((e) => e.name === 'etc/')).toHaveLength(1);
    expect(byName(es, 'etc/')).toMatchObject({ mode: 0o755, uid: 2, gid: 3, mtime: 99 });
    expect(names(es).sort()).toEqual(['etc/', 'etc/a', 'etc/b']);
  });

  it('replaces a file by a directory and a directory by a file', async () => {
    const l0 = layer({ f: 'p', data: 'file' }, { d: 'q' }, { f: 'q/child', data: 'c' });
    const l1 = layer({ d: 'p' }, { f: 'p/inner', data: 'i' }, { s: 'q', to: '/elsewhere' });
    const es = await list((await flatten([l0, l1])).tar);
    expect(names(es).sort()).toEqual(['p/', 'p/inner', 'q']);
    expect(byName(es, 'q')).toMatchObject({ type: 'symlink', linkname: '/elsewhere' });
  });

  it('preserves symlinks (absolute and relative), modes, owners and mtimes', async () => {
    const l0 = layer(
      { d: 'bin' },
      { f: 'bin/sh', data: '#!', mode: 0o4755, uid: 12, gid: 34, mtime: 123456 },
      { s: 'bin/bash', to: 'sh' },
      { s: 'usr', to: '/nix/store/x-usr' },
    );
    const es = await list((await flatten([l0])).tar);
    expect(byName(es, 'bin/sh')).toMatchObject({ mode: 0o4755, uid: 12, gid: 34, mtime: 123456, data: '#!' });
    expect(byName(es, 'bin/bash')).toMatchObject({ type: 'symlink', linkname: 'sh' });
    expect(byName(es, 'usr')).toMatchObject({ type: 'symlink', linkname: '/nix/store/x-usr' });
  });

  it('keeps a hard link inside one layer as a link after its target', async () => {
    const es = await list((await flatten([layer({ f: 'a', data: 'AAA' }, { h: 'b', to: 'a' })])).tar);
    expect(es.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['a', 'file', null],
      ['b', 'link', 'a'],
    ]);
  });

  it('orders a hard link into a lower layer after its target', async () => {
    const l0 = layer({ f: 'target', data: 'T' });
    const l1 = layer({ h: 'link', to: 'target' }, { f: 'other', data: 'o' });
    const es = await list((await flatten([l0, l1])).tar);
    const i = names(es).indexOf('target');
    const j = names(es).indexOf('link');
    expect(i).toBeGreaterThanOrEqual(0);
    expect(j).toBeGreaterThan(i);
    expect(byName(es, 'link')).toMatchObject({ type: 'link', linkname: 'target' });
  });

  it('turns a hard link whose lower target a higher layer replaced into a copy of the old content', async () => {
    const l0 = layer({ f: 'f', data: 'old', mode: 0o600, uid: 9 });
    const l1 = layer({ h: 'h', to: 'f' });
    const l2 = layer({ f: 'f', data: 'new' });
    const { tar, stats } = await flatten([l0, l1, l2]);
    const es = await list(tar);
    expect(byName(es, 'f').data).toBe('new');
    expect(byName(es, 'h')).toMatchObject({ type: 'file', data: 'old', mode: 0o600, uid: 9 });
    expect(stats.layersReread).toBe(0);
  });

  it('re-reads a layer to copy an in-layer hard-link target that a higher layer deleted', async () => {
    const l0 = layer({ f: 'orig', data: 'payload' }, { h: 'l1', to: 'orig' }, { h: 'l2', to: 'l1' }, { f: 'z', data: 'z' });
    const l1 = layer({ f: '.wh.orig' });
    const opens: number[] = [];
    const { tar, stats } = await flatten([l0, l1], opens);
    const es = await list(tar);
    expect(names(es).sort()).toEqual(['l1', 'l2', 'z']);
    expect(byName(es, 'l1')).toMatchObject({ type: 'file', data: 'payload' });
    expect(byName(es, 'l2')).toMatchObject({ type: 'link', linkname: 'l1' });
    expect(names(es).indexOf('l2')).toBeGreaterThan(names(es).indexOf('l1'));
    expect(stats.layersReread).toBe(1);
    expect(opens).toEqual([1, 0, 0]);
  });

  it('follows a hard-link chain from a higher layer into a lower layer, also when the chain start was replaced', async () => {
    const l0 = layer({ f: 'f', data: 'F0' }, { h: 'g', to: 'f' });
    const l1 = layer({ h: 'h', to: 'g' });
    let es = await list((await flatten([l0, l1])).tar);
    expect(es.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['f', 'file', null],
      ['g', 'link', 'f'],
      ['h', 'link', 'f'],
    ]);
    const l2 = layer({ f: 'f', data: 'F2' });
    const { tar, stats } = await flatten([l0, l1, l2]);
    es = await list(tar);
    expect(es.map((e) => [e.name, e.type, e.linkname, e.data])).toEqual([
      ['f', 'file', null, 'F2'],
      ['g', 'file', null, 'F0'],
      ['h', 'link', 'g', ''],
    ]);
    expect(stats.layersReread).toBe(1);
  });

  it('normalises leading "/" and "./" (as Docker does) and synthesises unlisted parents at the end', async () => {
    const es = await list((await flatten([layer({ f: '/abs/file', data: '1' }, { f: './rel/x/y', data: '2' }, { d: './' })])).tar);
    expect(names(es)).toEqual(['abs/file', 'rel/x/y', 'rel/x/', 'rel/', 'abs/']);
    expect(byName(es, 'rel/x/')).toMatchObject({ mode: 0o755, uid: 0, gid: 0, mtime: 0 });
  });

  it('writes files in layer-walk order (top layer first), then all directories deepest first', async () => {
    const l0 = layer({ d: 'a' }, { f: 'a/low', data: '0' }, { d: 'b' }, { d: 'b/c' }, { f: 'b/c/f' });
    const l1 = layer({ d: 'a' }, { f: 'a/high', data: '1' }, { f: 'z' });
    const es = await list((await flatten([l0, l1])).tar);
    expect(names(es)).toEqual(['a/high', 'z', 'a/low', 'b/c/f', 'b/c/', 'b/', 'a/']);
  });

  it('is deterministic: same layers, same bytes; different layer order, different result', async () => {
    const l0 = layer({ d: 'a' }, { f: 'a/1', data: Buffer.alloc(3000, 1) }, { f: 'x', data: 'x0' });
    const l1 = layer({ f: 'a/.wh.1' }, { f: 'x', data: 'x1' }, { h: 'y', to: 'x' });
    const one = (await flatten([l0, l1])).tar;
    const two = (await flatten([l0, l1])).tar;
    expect(one.equals(two)).toBe(true);
    expect(one.equals((await flatten([l1, l0])).tar)).toBe(false);
    expect(one.length % 512).toBe(0);
  });

  it('carries large files through in pieces with exact bytes', async () => {
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const es = await list((await flatten([layer({ f: 'big', data: big })])).tar);
    expect(Buffer.from(byName(es, 'big').data, 'latin1').equals(big)).toBe(true);
  });
});
