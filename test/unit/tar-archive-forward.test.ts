import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { TarArchive } from '../../src/nix/stream/tar-reader.js';
import { goTarFile, TAR_TRAILER } from '../../src/tar/go-ustar.js';

// A gzip'd archive can only be read forward. Layers read one after the other in archive order must inflate it
// once (it used to be once per layer: quadratic for push and export of `--compress gz` images); readers that go
// back (the cursor restarts) or overlap (a private cursor) still get the right bytes.
const MEMBERS = Array.from({ length: 6 }, (_, i) => ({ name: `layer-${i}.tar`, data: Buffer.alloc(200_000 + i * 777, 97 + i) }));

async function read(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

describe('TarArchive.memberData on a gzip archive', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nixreg-forward-tar-'));
  const file = join(dir, 'image.tar.gz');
  writeFileSync(file, gzipSync(Buffer.concat([...MEMBERS.map((m) => goTarFile(m.name, m.data)), TAR_TRAILER])));

  it('in archive order: one inflation for all members', async () => {
    const a = await TarArchive.open(file, () => false);
    try {
      for (const m of MEMBERS) expect((await read(a.memberData(a.getMember(m.name)!))).equals(m.data), m.name).toBe(true);
      expect(a.inflations).toBe(1);
    } finally {
      await a.close();
    }
  });

  it('going back, or two readers at once: correct bytes from private cursors', async () => {
    const a = await TarArchive.open(file, () => false);
    try {
      expect((await read(a.memberData(a.getMember('layer-4.tar')!))).equals(MEMBERS[4]!.data)).toBe(true);
      expect((await read(a.memberData(a.getMember('layer-1.tar')!))).equals(MEMBERS[1]!.data)).toBe(true); // back: the cursor restarts
      expect(a.inflations).toBe(2);
      const [x, y] = await Promise.all([read(a.memberData(a.getMember('layer-2.tar')!)), read(a.memberData(a.getMember('layer-5.tar')!))]);
      expect(x.equals(MEMBERS[2]!.data)).toBe(true);
      expect(y.equals(MEMBERS[5]!.data)).toBe(true);
    } finally {
      await a.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
