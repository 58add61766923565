import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type { StreamConf } from '../../src/nix/stream/index.js';
import { ArchiveTee } from '../../src/sink/registry/archive-tee.js';
import type { PushLayer } from '../../src/sink/registry/conf-source.js';

// The archive tee on its own: an upload that fails after the layer's member was finished (its closing PUT) and
// generates the layer again must leave the archive as one clean pass writes it, into a file and into a FIFO.
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-tee-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const conf = { mtime: 1 } as StreamConf;
const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 251));
const diffID = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
const layer = (): PushLayer => ({
  index: 0,
  kind: 'store',
  paths: ['/nix/store/00000000000000000000000000000000-x'],
  size: bytes.length,
  open: async () => Readable.from([bytes]),
});

/** One attempt through the tee's stage, as the upload runs it. */
async function attempt(tee: ArchiveTee, l: PushLayer, finish: boolean): Promise<void> {
  const t = await tee.beginLayer(l);
  const passed: Buffer[] = [];
  await new Promise<void>((res, rej) => {
    t.stage
      .on('data', (c: Buffer) => passed.push(c))
      .on('end', res)
      .on('error', rej);
    t.stage.end(bytes);
  });
  expect(Buffer.concat(passed).equals(bytes)).toBe(true); // the upload sees every byte
  if (finish) await t.finish(diffID, bytes.length);
  t.rewind(); // the closing PUT (or the PATCH before it) failed: the upload tries again
}

async function archive(out: string, attempts: boolean[]): Promise<Buffer> {
  const fifo = out.endsWith('.fifo');
  const reading = fifo
    ? new Promise<Buffer>((res, rej) => {
        const parts: Buffer[] = [];
        createReadStream(out)
          .on('data', (c) => parts.push(c as Buffer))
          .on('end', () => res(Buffer.concat(parts)))
          .on('error', rej);
      })
    : undefined;
  const tee = await ArchiveTee.open(out, conf, fifo);
  const l = layer();
  for (const finish of attempts) await attempt(tee, l, finish);
  const last = await tee.beginLayer(l);
  await last.put(bytes);
  await last.finish(diffID, bytes.length);
  await tee.complete([l], [diffID], Buffer.from('{}'), 'x:1');
  await tee.commit();
  return reading ? reading : readFileSync(out);
}

describe('archive tee: retried attempts', () => {
  for (const kind of ['file', 'fifo'] as const)
    it(`${kind}: a retry after a finished or a half-written member leaves the single-pass archive`, async () => {
      const dir = mkdtempSync(join(tmp, `${kind}-`));
      const name = (n: string) => {
        const p = join(dir, kind === 'fifo' ? `${n}.fifo` : `${n}.tar`);
        if (kind === 'fifo') expect(spawnSync('mkfifo', [p]).status).toBe(0);
        return p;
      };
      const clean = await archive(name('clean'), []);
      expect(clean.length % 10240).toBe(0);
      const retried = await archive(name('retried'), [false, true, true]);
      expect(retried.equals(clean)).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(kind === 'fifo' ? ['clean.fifo', 'retried.fifo'] : ['clean.tar', 'retried.tar']);
    }, 60_000);
});

describe('archive tee: a retry whose bytes differ from the member already written', () => {
  it('fifo: one integrity error, not a silently different archive', async () => {
    const dir = mkdtempSync(join(tmp, 'differ-'));
    const out = join(dir, 'out.fifo');
    expect(spawnSync('mkfifo', [out]).status).toBe(0);
    const reading = new Promise<void>((res, rej) =>
      createReadStream(out)
        .on('data', () => {})
        .on('close', res)
        .on('error', rej),
    );
    const tee = await ArchiveTee.open(out, conf, true);
    const l = layer();
    await attempt(tee, l, true);
    const again = await tee.beginLayer(l);
    const other = Buffer.from(bytes).fill(1, 0, 1);
    await again.put(other);
    const otherID = 'sha256:' + createHash('sha256').update(other).digest('hex');
    await expect(again.finish(otherID, other.length)).rejects.toThrow(/came out as .* when generated again/);
    await tee.abort();
    await reading;
  }, 60_000);
});
