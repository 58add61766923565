import { Transform, type TransformCallback } from 'node:stream';
import type { DecodeResult, NativeCodecs, NativeKind } from '../native/codecs.js';
import { STREAM_BUFFER } from '../util/stream-buffer.js';

/** Output decoded per step before the stream looks at backpressure again: a compression bomb stays bounded. */
const MAX_OUT_PER_STEP = 512 << 10;

/**
 * A Transform over a native streaming decoder (src/native/codecs.c). Each step runs on libuv's thread pool, as
 * node:zlib's do, so decoding overlaps the hashing on the main thread, and yields at most MAX_OUT_PER_STEP bytes:
 * when the reader stops (push() returns false) the next step waits for _read, so memory stays bounded by the
 * stream buffers whatever the compression ratio.
 */
export class NativeDecompressStream extends Transform {
  private readonly handle: unknown;
  private input: Buffer | undefined;
  private offset = 0;
  private done: TransformCallback | undefined;
  private waiting = false;
  private busy = false;

  constructor(
    private readonly codecs: NativeCodecs,
    kind: NativeKind,
    private readonly wrapError: (e: unknown) => Error,
  ) {
    super({ readableHighWaterMark: STREAM_BUFFER });
    this.handle = codecs.open(kind);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.input = chunk;
    this.offset = 0;
    this.done = cb;
    this.step();
  }

  override _read(size: number): void {
    if (this.waiting) {
      this.waiting = false;
      this.step();
      return;
    }
    super._read(size);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.codecs.finish(this.handle);
    } catch (e) {
      return cb(this.wrapError(e));
    }
    cb();
  }

  private step(): void {
    const input = this.input;
    if (!input || this.busy || this.destroyed) return;
    this.busy = true;
    // the callback keeps this stream (and so the decoder handle) alive while the step runs
    this.codecs.decode(this.handle, input, this.offset, MAX_OUT_PER_STEP, (err, r) => this.stepped(input, err, r));
  }

  private stepped(input: Buffer, err: Error | undefined, r: DecodeResult): void {
    this.busy = false;
    if (this.destroyed) return;
    if (err) return this.end_(this.wrapError(err));
    this.offset += r[0];
    let out = 0;
    for (let i = 2; i < r.length; i++) out += (r[i] as Buffer).length;
    const drained = r[1];
    // libzstd and ISA-L take all input they are given (buffering partial blocks) while they have output room:
    // input left over without progress would be lost with the next chunk, so it is an error, never dropped
    if (!drained && r[0] === 0 && out === 0)
      return this.end_(this.wrapError(new Error(`the decoder stopped with ${input.length - this.offset} input bytes left`)));
    // The next step starts on the thread pool BEFORE these chunks are pushed: a push runs the readers' handlers
    // (hashing, writes) synchronously, and decoding the next piece meanwhile is what makes the two overlap. It
    // starts only while the buffer is below its mark, so at most one step's output (MAX_OUT_PER_STEP) goes past it.
    if (!drained && this.readableLength < this.readableHighWaterMark) this.step();
    let flowing = true;
    for (let i = 2; i < r.length; i++) flowing = this.push(r[i] as Buffer) && flowing;
    if (drained) return this.end_();
    if (this.busy || this.destroyed) return;
    if (flowing) this.step();
    else this.waiting = true;
  }

  private end_(err?: Error): void {
    const cb = this.done;
    this.input = undefined;
    this.done = undefined;
    cb?.(err);
  }
}
