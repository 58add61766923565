import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { NixregError, describeSystemError, fileError } from '../../errors.js';
import { openAtomic } from '../../util/atomic-file.js';
import { releaseLayerChunk } from './store-layer.js';
import { writeAll } from '../../util/write-all.js';
import { drained } from '../../util/drained.js';

/**
 * Where the outer image tar goes. A seekable sink (a regular output file) lets the writer patch a layer's
 * header after the layer has been written and hashed, so no layer is generated twice.
 */
export interface ByteSink {
  write(b: Buffer): Promise<void>;
  /** Present only on seekable sinks: overwrite already-written bytes at `offset`. */
  patch?(offset: number, b: Buffer): Promise<void>;
  /** Present only on sinks that can go back: the next write lands at `offset` (an earlier one), as if nothing followed it. */
  seek?(offset: number): Promise<void>;
  finish(): Promise<void>;
}

const IN_FLIGHT = 8;
const QUEUE_HIGH = 8 << 20;

/** Positional writes to an open file, several in flight so disk writes overlap reading and hashing. */
export class FileSink implements ByteSink {
  private pos = 0;
  private sought = false;
  private inflight: Array<Promise<unknown>> = [];
  private failed?: unknown;
  constructor(
    private readonly fh: FileHandle,
    private readonly label: string,
    /**
     * The chunks also go elsewhere (the push --output tee feeds them to an upload, whose compressor hands them back
     * to the chunk pool): each write then completes before write() returns, and no chunk is handed back here.
     */
    private readonly sharedChunks = false,
  ) {}
  async write(b: Buffer): Promise<void> {
    if (this.failed) throw this.fail(this.failed);
    const at = this.pos;
    this.pos += b.length;
    // write() takes ownership of b: once written, a layer chunk is held by no one (image.ts and the OCI writer only
    // hash it synchronously before), so it is recycled (other buffers are ignored by releaseLayerChunk).
    const p = writeAll(this.fh, b, at).then(
      () => {
        if (!this.sharedChunks) releaseLayerChunk(b);
      },
      (err) => {
        this.failed ??= err;
      },
    );
    this.inflight.push(p);
    if (this.inflight.length >= (this.sharedChunks ? 1 : IN_FLIGHT)) await this.inflight.shift();
    if (this.sharedChunks && this.failed) throw this.fail(this.failed);
  }
  async patch(offset: number, b: Buffer): Promise<void> {
    await this.drain();
    await writeAll(this.fh, b, offset).catch((err) => {
      throw this.fail(err);
    });
  }
  async seek(offset: number): Promise<void> {
    await this.drain();
    this.pos = offset;
    this.sought = true;
  }
  async finish(): Promise<void> {
    await this.drain();
    // after a seek back, what the earlier writes left past the end goes
    if (this.sought)
      await this.fh.truncate(this.pos).catch((err) => {
        throw this.fail(err);
      });
  }
  private async drain(): Promise<void> {
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.failed) throw this.fail(this.failed);
  }
  private fail(err: unknown): NixregError {
    return err instanceof NixregError ? err : fileError(`cannot write ${this.label}: ${describeSystemError(err)}`, err);
  }
}

/** A Writable (stdout, a pipe, an upload): respects backpressure, reports the first error as one line. */
export class WritableSink implements ByteSink {
  private error?: Error;
  constructor(
    private readonly stream: Writable,
    private readonly label: string,
    private readonly end = false,
  ) {
    stream.on('error', (err) => {
      this.error ??= err;
    });
  }
  async write(b: Buffer): Promise<void> {
    if (this.error) throw this.fail();
    this.stream.write(b);
    // Keep up to QUEUE_HIGH bytes queued rather than waiting for a full drain at the stream's small
    // highWaterMark: the reader (a pipe into docker load, gzip, sha256sum) then has data while we generate the
    // next chunks, instead of the two taking turns. One event-loop turn per chunk lets libuv write meanwhile.
    if (this.stream.writableLength > QUEUE_HIGH) await drained(this.stream, 'the output was closed before the end').catch((e: Error) => (this.error ??= e));
    else await new Promise((r) => setImmediate(r));
    if (this.error) throw this.fail();
  }
  async finish(): Promise<void> {
    if (this.error) throw this.fail();
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (this.end) this.stream.end(cb);
      else this.stream.write(Buffer.alloc(0), cb);
    }).catch((err) => {
      this.error ??= err;
      throw this.fail();
    });
  }
  private fail(): NixregError {
    const code = (this.error as { code?: string }).code;
    if (code === 'EPIPE') return new NixregError(`${this.label} was closed before the image was complete (EPIPE)`);
    return fileError(`cannot write ${this.label}: ${describeSystemError(this.error)}`, this.error);
  }
}

/**
 * stdout redirected to a regular file (`nixreg stream conf > image.tar`): sequential writes that advance the
 * shared file offset (so whatever the shell writes next lands after the image), plus positional writes to patch
 * headers, which leave that offset alone. Returns undefined when stdout is not such a file, or when it was opened
 * with O_APPEND (where Linux turns positional writes into appends), or when the offset cannot be read.
 */
export function seekableStdoutSink(fd = 1): ByteSink | undefined {
  let base: number;
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const pos = /^pos:\s*(\d+)/m.exec(info);
    const flags = /^flags:\s*([0-7]+)/m.exec(info);
    if (!pos || !flags || (parseInt(flags[1]!, 8) & 0o2000) !== 0) return undefined; // O_APPEND
    base = Number(pos[1]);
  } catch {
    return undefined;
  }
  const label = 'stdout';
  const wrap = (err: unknown) => fileError(`cannot write ${label}: ${describeSystemError(err)}`, err);
  return {
    async write(b: Buffer) {
      try {
        for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
      } catch (err) {
        throw wrap(err);
      }
    },
    async patch(offset: number, b: Buffer) {
      try {
        for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off, base + offset + off);
      } catch (err) {
        throw wrap(err);
      }
    },
    async finish() {},
  };
}

/**
 * Run `write` on a FileSink over an atomic temp file beside `target` (renamed into place only when `write`
 * succeeds, removed otherwise): the one file-output path of `stream`, `build` and `--format oci-archive`, so each
 * writes layers once and back-patches headers. `notOpened` runs when the output cannot even be created
 * (e.g. it exists), to release what the caller opened before.
 */
export async function writeAtomicFile<T>(
  target: string,
  force: boolean | undefined,
  write: (sink: ByteSink) => Promise<T>,
  notOpened?: () => Promise<void> | void,
): Promise<T> {
  let out;
  try {
    out = await openAtomic(target, { force });
  } catch (err) {
    await notOpened?.();
    throw err;
  }
  try {
    if (!out.seekable) {
      const result = await write(new WritableSink(out.stream, target, false)); // a FIFO or device: written in order
      await out.commit();
      return result;
    }
    let fh;
    try {
      fh = await open(out.tempPath, 'r+');
    } catch (err) {
      throw fileError(`cannot write output ${target}: ${describeSystemError(err)}`, err);
    }
    let result: T;
    try {
      result = await write(new FileSink(fh, target));
    } finally {
      await fh.close();
    }
    await out.commit();
    return result;
  } catch (err) {
    await out.abort();
    throw err;
  }
}
