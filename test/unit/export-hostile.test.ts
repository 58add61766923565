import { describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import { encodePythonPaxHeader } from '../../src/tar/python-pax.js';
import { flatten, layer } from '../helpers/export-layers.js';

/** Expect flattening to fail with a one-line NixregError matching every pattern. */
async function refuses(layers: Buffer[], ...patterns: Array<string | RegExp>): Promise<string> {
  const err = await flatten(layers).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NixregError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of patterns) expect(msg).toMatch(p);
  return msg;
}

function header(fields: { name: string; size?: number; typeflag?: string }): Buffer {
  const h = encodePythonPaxHeader({ name: fields.name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: fields.size ?? 0, mtime: 0 });
  if (fields.typeflag) {
    // rewrite typeflag and checksum
    h[156] = fields.typeflag.charCodeAt(0);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += h[i]!;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  }
  return h;
}

describe('export: hostile layers are refused with one clear line', () => {
  it('refuses "../" names, also ones that would stay inside', async () => {
    await refuses([layer({ f: '../escape', data: 'x' })], 'L0', '"../escape"', /\.\./);
    await refuses([layer({ f: 'ok', data: '' }), layer({ f: 'a/../../etc/passwd', data: 'x' })], 'L1', 'a/../../etc/passwd');
    await refuses([layer({ f: 'a/../b', data: 'x' })], 'a/../b');
  });

  it('refuses a whiteout with ".." (a whiteout cannot delete outside either)', async () => {
    await refuses([layer({ f: 'x' }), layer({ f: '../.wh.x' })], '../.wh.x');
  });

  it('refuses an entry under a symlink of the same layer, in either order', async () => {
    await refuses([layer({ s: 'a', to: '/etc' }, { f: 'a/passwd', data: 'pwned' })], 'L0', '"a/passwd"', /symlink/);
    await refuses([layer({ f: 'a/passwd', data: 'pwned' }, { s: 'a', to: '/etc' })], 'L0', '"a"', 'a/passwd');
  });

  it('refuses an entry under a same-layer symlink even when a higher layer replaces both by a directory', async () => {
    await refuses([layer({ s: 'a', to: '/etc' }, { f: 'a/passwd', data: 'pwned' }), layer({ d: 'a' })], 'L0', '"a/passwd"', /symlink/);
  });

  it('refuses an entry whose parent a LOWER layer makes a symlink', async () => {
    await refuses([layer({ s: 'a', to: '/etc' }), layer({ f: 'a/passwd', data: 'pwned' })], 'layer L0: entry "a" is a symlink', '"a/passwd" (layer L1)');
  });

  it('refuses an entry under a regular file', async () => {
    await refuses([layer({ f: 'a', data: 'file' }), layer({ f: 'a/b', data: 'x' })], '"a"', 'a/b');
  });

  it('refuses hard links whose target escapes, is missing, is a directory or is deleted in between', async () => {
    await refuses([layer({ h: 'x', to: '../../etc/shadow' })], 'L0', '"x"', '../../etc/shadow');
    await refuses([layer({ h: 'x', to: 'nowhere' })], '"x"', 'nowhere', /does not exist/);
    await refuses([layer({ d: 'dir' }, { h: 'x', to: 'dir' })], '"x"', /directory/);
    await refuses([layer({ d: 'dir' }), layer({ h: 'x', to: 'dir' })], '"x"', /directory/);
    await refuses(
      [layer({ f: 't', data: 'T' }), layer({ f: '.wh.t' }), layer({ h: 'x', to: 't' })],
      'layer L2: entry "x"',
      /"t", which does not exist below it \(layer L1 deletes it/,
    );
  });

  it('refuses a hard link through a symlink (same layer or lower)', async () => {
    await refuses([layer({ d: 's' }, { f: 's/passwd' }), layer({ s: 's', to: '/etc' }, { h: 'h', to: 's/passwd' })], 'L1', '"h"', /under "s", a symlink/);
    await refuses([layer({ s: 's', to: '/etc' }), layer({ h: 'h', to: 's/passwd' })], '"h"', /does not exist/);
  });

  it('refuses a path listed in one layer as a directory and as a file', async () => {
    await refuses([layer({ d: 'x' }, { f: 'x', data: '2' })], '"x"', /twice/);
  });

  it('refuses malformed tars: bad checksum, truncation, huge PAX header, sparse and unknown types', async () => {
    const good = layer({ f: 'first', data: 'x' });
    const corrupt = Buffer.from(good);
    corrupt[0] = 0x41; // name changed, checksum not
    await refuses([corrupt], 'L0', /not a tar|corrupt/);
    const second = Buffer.concat([layer({ f: 'first', data: 'x' }).subarray(0, 1024), header({ name: 'bad' })]);
    second[1024 + 5] ^= 1;
    await refuses([second], /corrupt tar header at offset 1024/, '"first"');
    await refuses([layer({ f: 'big', data: Buffer.alloc(5000) }).subarray(0, 2048)], /truncated/);
    await refuses([Buffer.concat([header({ name: 'pax', size: 1 << 30, typeflag: 'x' }), Buffer.alloc(512)])], /PAX header of 1073741824 bytes/);
    await refuses([Buffer.concat([header({ name: 'sp', typeflag: 'S' }), Buffer.alloc(1024)])], /sparse/);
    await refuses([Buffer.concat([header({ name: 'v', typeflag: 'V' }), Buffer.alloc(1024)])], /unsupported tar entry type 'V'/);
    await refuses([Buffer.alloc(100)], /empty or not a tar/);
  });

  it('refuses names longer than PATH_MAX', async () => {
    await refuses([layer({ f: 'a/'.repeat(2100) + 'x' })], /longer than 4096/);
  });
});
