import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { link, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NixregError, describeSystemError, ExitCode, fileError } from '../errors.js';
import { pidAlive } from './pid-alive.js';

/**
 * An output file that appears complete or not at all: bytes go to a hidden temp file beside the target
 * (same filesystem, so rename is atomic), which is renamed over the target on commit and removed on abort,
 * and on SIGINT/SIGTERM via the process-wide cleanup list.
 */
export interface AtomicFile {
  readonly path: string;
  /** The file to write with positioned I/O when `seekable`; the target itself for a FIFO or device. */
  readonly tempPath: string;
  /** False for a FIFO, device or descriptor output: only `stream` may be used, in order. */
  readonly seekable: boolean;
  readonly stream: WriteStream;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

const pending = new Set<string>();
let hooked = false;
function hookSignals(): void {
  if (hooked) return;
  hooked = true;
  const removePending = () => {
    for (const p of pending) {
      try {
        rmSync(p, { force: true, recursive: true });
      } catch {
        /* best effort */
      }
    }
  };
  const cleanup = (sig: NodeJS.Signals) => {
    removePending();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
  process.once('exit', removePending); // any exit before commit or abort (an error reported by process.exit)
}

/**
 * Put a temp path (file or directory) on the SIGINT/SIGTERM cleanup list; returns the function that takes it off
 * once it has been renamed into place or removed. openAtomic does this for files; directory outputs
 * (`--format oci`) call it themselves.
 */
export function removeOnSignal(tempPath: string): () => void {
  hookSignals();
  pending.add(tempPath);
  return () => pending.delete(tempPath);
}

/** Descriptor paths (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`): whatever they point to is written into. */
const DESCRIPTOR_PATH = /^\/(dev\/(stdout|stderr|fd\/\d+)|proc\/self\/fd\/\d+)$/;

/**
 * True when `target` is to be opened and written into rather than replaced: a FIFO, a character device or a
 * socket (`-o >(wc -c)`, `-o /dev/null`), or a descriptor path; skopeo does the same. Such an output is not seekable.
 */
async function writesInto(target: string): Promise<boolean> {
  if (DESCRIPTOR_PATH.test(target)) return true;
  const st = await stat(target).catch(() => undefined);
  return !!st && (st.isFIFO() || st.isCharacterDevice() || st.isSocket());
}

/** Write into a special file: no temp file, nothing renamed over it or removed on abort. */
async function openInto(target: string): Promise<AtomicFile> {
  const stream = createWriteStream(target, { flags: 'w', highWaterMark: 1 << 20 });
  let streamError: unknown;
  stream.on('error', (e) => {
    streamError ??= e;
  });
  // Opening a FIFO waits for its reader (in libuv's thread pool, not blocking the event loop).
  await new Promise<void>((r) => {
    stream.once('ready', () => r());
    stream.once('error', () => r());
  });
  if (streamError) throw fileError(`cannot write output ${target}: ${describeSystemError(streamError)}`, streamError);
  let done = false;
  return {
    path: target,
    tempPath: target,
    seekable: false,
    stream,
    async commit() {
      if (done) return;
      done = true;
      try {
        await finishStream(stream, () => streamError);
      } catch (err) {
        await settle(stream);
        throw fileError(`cannot write output ${target}: ${describeSystemError(err)}`, err);
      }
    },
    async abort() {
      if (done) return;
      done = true;
      await settle(stream);
    },
  };
}

export async function openAtomic(target: string, opts: { force?: boolean; mode?: number } = {}): Promise<AtomicFile> {
  if (await writesInto(target)) return openInto(target);
  const existing = await stat(target).catch(() => undefined);
  if (existing && !opts.force) throw new NixregError(`output ${target} already exists; remove it or pass --force`, ExitCode.usage);
  if (existing && !existing.isFile())
    throw new NixregError(`output ${target} exists and is not a regular file; --force replaces only regular files, remove it first`, ExitCode.usage);
  await reclaimStaleTemps(target);
  const tempPath = join(dirname(target), `${tempPrefix(target)}${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tempPath, 'wx', opts.mode ?? 0o644);
    await fh.close();
  } catch (err) {
    throw fileError(`cannot write output ${target}: ${describeSystemError(err)}`, err);
  }
  hookSignals();
  pending.add(tempPath);
  const stream = createWriteStream(tempPath, { flags: 'r+', highWaterMark: 1 << 20 });
  // A write error (ENOSPC, EIO) reaches the writer through its callbacks or the pipeline; this listener keeps a
  // late one (after abort) from becoming an unhandled 'error' event.
  let streamError: unknown;
  stream.on('error', (e) => {
    streamError ??= e;
  });
  let done = false;
  return {
    path: target,
    tempPath,
    seekable: true,
    stream,
    async commit() {
      if (done) return;
      done = true;
      try {
        await finishStream(stream, () => streamError);
        if (opts.force) await rename(tempPath, target);
        else await linkNoReplace(tempPath, target);
      } catch (err) {
        await settle(stream);
        await rm(tempPath, { force: true });
        if (err instanceof NixregError) throw err;
        throw fileError(`cannot write output ${target}: ${describeSystemError(err)}`, err);
      } finally {
        pending.delete(tempPath);
      }
    },
    async abort() {
      if (done) return;
      done = true;
      await settle(stream);
      await rm(tempPath, { force: true });
      pending.delete(tempPath);
    },
  };
}

/** Destroy the stream and wait until its descriptor is closed, so no pending write lands after the unlink. */
/**
 * End `stream` and wait until its bytes are in the file; throws the stream's write error, or one for a stream that
 * was destroyed before its end. A stream that a pipeline ended is finished and then destroyed (autoDestroy): that
 * one is complete, not cut short.
 */
async function finishStream(stream: WriteStream, writeError: () => unknown): Promise<void> {
  if (stream.destroyed && !stream.writableFinished) {
    await settle(stream);
    throw writeError() ?? new Error('the output stream was closed before the end');
  }
  if (stream.writableFinished) await settle(stream);
  else if (!stream.closed) await new Promise<void>((res, rej) => stream.end((e?: Error | null) => (e ? rej(e) : res())));
  if (writeError()) throw writeError();
}

async function settle(stream: WriteStream): Promise<void> {
  if (stream.closed) return;
  const closed = new Promise<void>((r) => stream.once('close', () => r()));
  if (!stream.destroyed) stream.destroy();
  await closed;
}

/**
 * Move the finished temp file to `target` unless something appeared there meanwhile: link(2) fails with EEXIST
 * instead of replacing (https://man7.org/linux/man-pages/man2/link.2.html), unlike rename(2).
 */
async function linkNoReplace(tempPath: string, target: string): Promise<void> {
  try {
    await link(tempPath, target);
  } catch (err) {
    if ((err as { code?: string }).code === 'EEXIST') {
      throw new NixregError(`output ${target} appeared while it was being written; remove it or pass --force`, ExitCode.usage);
    }
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK'].includes((err as { code?: string }).code ?? '')) throw err;
    // Filesystems without hard links (FAT, some FUSE mounts): the best left is check, then rename.
    const exists = await stat(target).then(
      () => true,
      () => false,
    );
    if (exists) throw new NixregError(`output ${target} appeared while it was being written; remove it or pass --force`, ExitCode.usage);
    await rename(tempPath, target);
    return;
  }
  await unlink(tempPath);
}

const tempPrefix = (target: string) => `.${basename(target)}.nixreg-`;

/**
 * Remove temp files beside `target` left by nixreg runs that were killed (their PID no longer exists); those of
 * live processes are left alone. Returns the number of bytes reclaimed.
 */
export async function reclaimStaleTemps(target: string): Promise<number> {
  const dir = dirname(target);
  const prefix = tempPrefix(target);
  const names = await readdir(dir).catch(() => [] as string[]);
  let bytes = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^(\d+)-[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    const path = join(dir, name);
    const size = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    await rm(path, { force: true, recursive: true }).then(
      () => (bytes += size),
      () => {},
    );
  }
  if (bytes > 0 && process.env.NIXREG_DEBUG) process.stderr.write(`nixreg: debug: reclaimed ${bytes} bytes of stale temp files beside ${target}\n`);
  return bytes;
}
