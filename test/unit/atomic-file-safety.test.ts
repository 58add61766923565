import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAtomic } from '../../src/util/atomic-file.js';
import { NixregError, describeSystemError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nixreg-atomic-safety-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The PID of a process that has exited (spawned and waited for here). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

describe('openAtomic', () => {
  it('aborts while writes are pending, and after writes that follow the abort, without an error event or temp file', async () => {
    const out = await openAtomic(join(dir, 'out.tar'));
    const chunk = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 16; i++) out.stream.write(chunk);
    await out.abort();
    // A pipeline still running when the abort happens writes once more.
    out.stream.write(chunk);
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports a write error (ENOSPC) at commit as one line naming the output, and leaves no temp file', async () => {
    const target = join(dir, 'out.tar');
    const out = await openAtomic(target);
    out.stream.write('partial');
    out.stream.destroy(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    const err = await out.commit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toContain(`cannot write output ${target}: no space left on device`);
    expect((err as Error).message).not.toContain('\n');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('without force never replaces a file that appeared while the output was written', async () => {
    const target = join(dir, 'out.tar');
    const out = await openAtomic(target);
    await new Promise<void>((r, j) => out.stream.write('mine', (e) => (e ? j(e) : r())));
    writeFileSync(target, 'theirs');
    const err = await out.commit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toContain(`output ${target}`);
    expect(readFileSync(target, 'utf8')).toBe('theirs');
    expect(readdirSync(dir)).toEqual(['out.tar']);
  });

  it('with force replaces a file that appeared meanwhile', async () => {
    const target = join(dir, 'out.tar');
    const out = await openAtomic(target, { force: true });
    await new Promise<void>((r, j) => out.stream.write('mine', (e) => (e ? j(e) : r())));
    writeFileSync(target, 'theirs');
    await out.commit();
    expect(readFileSync(target, 'utf8')).toBe('mine');
    expect(readdirSync(dir)).toEqual(['out.tar']);
  });

  it('reclaims temp files of dead nixreg runs beside the output and keeps those of live ones', async () => {
    const target = join(dir, 'out.tar');
    const stale = `.out.tar.nixreg-${deadPid()}-0123456789ab.tmp`;
    const live = `.out.tar.nixreg-${process.ppid}-0123456789ab.tmp`;
    const other = `.other.tar.nixreg-${deadPid()}-0123456789ab.tmp`;
    for (const n of [stale, live, other]) writeFileSync(join(dir, n), Buffer.alloc(4096));
    const out = await openAtomic(target);
    await out.abort();
    expect(readdirSync(dir).sort()).toEqual([live, other].sort());
  });

  it('names its temp file after its own PID', async () => {
    const out = await openAtomic(join(dir, 'out.tar'));
    expect(out.tempPath).toContain(`.out.tar.nixreg-${process.pid}-`);
    await out.abort();
  });
});

describe('describeSystemError', () => {
  it('says what to do about a full disk, a quota and a read-only file system', () => {
    for (const code of ['ENOSPC', 'EDQUOT', 'EROFS']) {
      const text = describeSystemError(Object.assign(new Error(`${code}: raw`), { code }));
      expect(text).not.toContain('raw');
      expect(text).toMatch(/free some space|another (filesystem|location)/);
    }
  });
});

describe('openAtomic on special outputs', () => {
  it('writes into a FIFO with a reader instead of replacing it, with or without force', async () => {
    for (const force of [false, true]) {
      const fifo = join(dir, `fifo-${force}`);
      execFileSync('mkfifo', [fifo]);
      const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
      const got: Buffer[] = [];
      reader.stdout.on('data', (b: Buffer) => got.push(b));
      const ended = new Promise((r) => reader.on('close', r));
      try {
        const out = await openAtomic(fifo, { force });
        expect(out.seekable).toBe(false);
        out.stream.write('through the pipe');
        await out.commit();
        await ended;
      } finally {
        reader.kill();
      }
      expect(Buffer.concat(got).toString()).toBe('through the pipe');
      expect(statSync(fifo).isFIFO()).toBe(true);
    }
    expect(readdirSync(dir).sort()).toEqual(['fifo-false', 'fifo-true']);
  });

  it('writes into /dev/fd/N', async () => {
    const target = join(dir, 'via-fd');
    const fd = openSync(target, 'w');
    try {
      const out = await openAtomic(`/dev/fd/${fd}`);
      out.stream.write('via descriptor');
      await out.commit();
    } finally {
      try {
        closeSync(fd);
      } catch {
        /* already closed by the stream */
      }
    }
    expect(readFileSync(target, 'utf8')).toBe('via descriptor');
  });

  it('with force refuses to replace a directory', async () => {
    const target = join(dir, 'adir');
    mkdirSync(target);
    await expect(openAtomic(target, { force: true })).rejects.toThrow(/not a regular file/);
    expect(statSync(target).isDirectory()).toBe(true);
  });
});
