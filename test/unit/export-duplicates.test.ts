import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flatten, layer, list, type E } from '../helpers/export-layers.js';

/** Extract the flattened tar with GNU tar (the consumer docker, umoci and `tar -r` users rely on). */
const work = mkdtempSync(join(tmpdir(), 'nixreg-export-dup-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
function extract(tar: Buffer): string {
  const dir = join(work, String(n++));
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(`${dir}.tar`, tar);
  execFileSync('tar', ['-xf', `${dir}.tar`, '-C', dir]);
  return dir;
}
const lastData = async (tar: Buffer, name: string) => (await list(tar)).filter((e) => e.name === name).at(-1)?.data;

describe('export: an entry listed twice in one layer (what `tar -r` appends)', () => {
  it('takes the last regular file, like docker export and umoci', async () => {
    const { tar } = await flatten([layer({ f: 'x', data: 'one' }, { f: 'y', data: 'y' }, { f: 'x', data: 'two' })]);
    expect(await lastData(tar, 'x')).toBe('two');
    expect(readFileSync(join(extract(tar), 'x'), 'utf8')).toBe('two');
  });

  it('takes the last entry across types (file → symlink, symlink → file)', async () => {
    const { tar } = await flatten([layer({ f: 'a', data: 'file' }, { s: 'a', to: 'target' }, { s: 'b', to: 'old' }, { f: 'b', data: 'new' })]);
    const dir = extract(tar);
    expect(readlinkSync(join(dir, 'a'))).toBe('target');
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('new');
  });

  it('keeps whiteouts: a higher layer still hides both copies, a lower layer is still hidden by them', async () => {
    const twice: E[] = [
      { f: 'x', data: '1' },
      { f: 'x', data: '2' },
    ];
    const hidden = await list((await flatten([layer(...twice), layer({ f: '.wh.x' })])).tar);
    expect(hidden.map((e) => e.name)).toEqual([]);
    const { tar } = await flatten([layer({ f: 'x', data: 'lower' }), layer(...twice)]);
    expect(readFileSync(join(extract(tar), 'x'), 'utf8')).toBe('2');
  });

  it('a hard link from a higher layer names the last copy', async () => {
    const { tar } = await flatten([layer({ f: 'x', data: '1' }, { f: 'x', data: '2' }), layer({ h: 'l', to: 'x' })]);
    const dir = extract(tar);
    expect(readFileSync(join(dir, 'l'), 'utf8')).toBe('2');
    expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('2');
  });

  it('a hard link replaced later in its layer by a file is not written after the file', async () => {
    const { tar } = await flatten([layer({ f: 't', data: 'T' }), layer({ h: 'x', to: 't' }, { f: 'x', data: 'own' })]);
    const dir = extract(tar);
    expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('own');
    expect(readFileSync(join(dir, 't'), 'utf8')).toBe('T');
  });

  it('a hard link in the layer names the copy before it', async () => {
    const { tar } = await flatten([layer({ f: 'x', data: '1' }, { h: 'l', to: 'x' }, { f: 'x', data: '2' })]);
    const dir = extract(tar);
    expect(readFileSync(join(dir, 'l'), 'utf8')).toBe('1');
    expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('2');
  });

  it('still refuses a path that is a directory once and a non-directory once', async () => {
    await expect(flatten([layer({ d: 'x' }, { f: 'x', data: '2' })])).rejects.toThrow(/"x".*directory/);
  });
});

describe('export: a directory listed twice in one layer', () => {
  it('takes the last header’s metadata, children of both kept', async () => {
    const es = await list(
      (await flatten([layer({ d: 'etc', mode: 0o700, uid: 1 }, { f: 'etc/a' }, { d: 'etc', mode: 0o750, uid: 3, mtime: 77 }, { f: 'etc/b' })])).tar,
    );
    expect(es.filter((e) => e.name === 'etc/')).toEqual([expect.objectContaining({ mode: 0o750, uid: 3, mtime: 77 })]);
    expect(es.map((e) => e.name).sort()).toEqual(['etc/', 'etc/a', 'etc/b']);
  });
});
