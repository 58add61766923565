import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NixregError, describeSystemError, ExitCode } from '../errors.js';

/**
 * An output file that appears complete or not at all: bytes go to a hidden temp file beside the target
 * (same filesystem, so rename is atomic), which is renamed over the target on commit and removed on abort,
 * and on SIGINT/SIGTERM via the process-wide cleanup list.
 */
export interface AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  readonly stream: WriteStream;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

const pending = new Set<string>();
let hooked = false;
function hookSignals(): void {
  if (hooked) return;
  hooked = true;
  const cleanup = (sig: NodeJS.Signals) => {
    for (const p of pending) {
      try {
        rmSync(p, { force: true, recursive: true });
      } catch {
        /* best effort */
      }
    }
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
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

export async function openAtomic(target: string, opts: { force?: boolean; mode?: number } = {}): Promise<AtomicFile> {
  if (!opts.force) {
    const exists = await stat(target).then(
      () => true,
      () => false,
    );
    if (exists) throw new NixregError(`output ${target} already exists; remove it or pass --force`, ExitCode.usage);
  }
  const tempPath = join(dirname(target), `.${basename(target)}.nixreg-${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tempPath, 'wx', opts.mode ?? 0o644);
    await fh.close();
  } catch (err) {
    throw new NixregError(`cannot write output ${target}: ${describeSystemError(err)}`);
  }
  hookSignals();
  pending.add(tempPath);
  const stream = createWriteStream(tempPath, { flags: 'r+', highWaterMark: 1 << 20 });
  let done = false;
  return {
    path: target,
    tempPath,
    stream,
    async commit() {
      if (done) return;
      done = true;
      if (!stream.closed) await new Promise<void>((res, rej) => stream.end((e?: Error | null) => (e ? rej(e) : res())));
      try {
        await rename(tempPath, target);
      } catch (err) {
        await rm(tempPath, { force: true });
        throw new NixregError(`cannot write output ${target}: ${describeSystemError(err)}`);
      } finally {
        pending.delete(tempPath);
      }
    },
    async abort() {
      if (done) return;
      done = true;
      stream.destroy();
      await new Promise((r) => setImmediate(r));
      await rm(tempPath, { force: true });
      pending.delete(tempPath);
    },
  };
}
