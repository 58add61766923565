import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { type DecodeResult, type NativeCodecs, type NativeKind, nativeDecoder } from '../native/codecs.js';
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

/** Bytes decoded per decodeInto call (each of decodeEach's two output buffers), and its input staging buffer. */
const PUMP_OUT = 1 << 20;
const PUMP_IN = 1 << 20;
/** decodeEach waits for this much input before a call (unless the input ended): fewer, fuller steps. */
const PUMP_MIN_IN = 256 << 10;
/** Input queued beyond the staging buffer before the input is paused. */
const PUMP_QUEUE = 4 << 20;
/** decodeEach's `onStarved` fires once the decoder has waited this long in all for input (a loopback registry: ~1 ms a layer). */
const STARVED_MS = 20;

/** The native decoders for `kind` when this install has them with decodeInto (decodeEach needs it). */
export function nativePump(kind: NativeKind): NativeCodecs | undefined {
  const codecs = nativeDecoder(kind);
  return codecs?.decodeInto ? codecs : undefined;
}

/**
 * Decode all of `input` with a native decoder into two output buffers allocated once, handing each decoded piece
 * to `onChunk` while the next piece decodes on the thread pool. The Buffer is valid only during the call (it is
 * decoded into again), so this is for readers that hash or copy it at once, or that return a promise (a file
 * write): that buffer is not decoded into again before the promise settles. Why not a Transform: each Buffer the
 * decoder hands out is new V8 external memory, and every few dozen MB of it costs a full GC; reused buffers cost
 * none. Input chunks (64 KiB socket reads) are gathered into one staging buffer, so each step decodes up to
 * PUMP_OUT bytes. `check` sees the first input chunk and may throw to refuse it. `onStarved` is called once when
 * the decoder has waited STARVED_MS in all for input: the input comes slower than it decodes. Rejects with
 * wrapError(…) on corrupt data, with the error of `input` when it fails, and when `onChunk` or `check` throws.
 */
export function decodeEach(
  codecs: NativeCodecs,
  kind: NativeKind,
  input: Readable,
  onChunk: (b: Buffer) => void | Promise<void>,
  wrapError: (e: unknown) => Error,
  check?: (first: Buffer) => void,
  onStarved?: () => void,
): Promise<void> {
  const decodeInto = codecs.decodeInto!;
  return new Promise<void>((resolve, reject) => {
    const handle = codecs.open(kind);
    const outs = [Buffer.allocUnsafeSlow(PUMP_OUT), Buffer.allocUnsafeSlow(PUMP_OUT)];
    const held: Array<Promise<void> | undefined> = [undefined, undefined]; // onChunk's promise for each buffer
    let which = 0;
    const stage = Buffer.allocUnsafeSlow(PUMP_IN);
    let staged = 0; // bytes in stage
    let off = 0; // of them, consumed by the decoder
    const queue: Buffer[] = [];
    let queued = 0;
    let flushing = false; // the last step filled its buffer: the decoder has more output for the input it took
    let ended = false;
    let busy = false;
    let done = false;
    let first = true;
    let waitingSince = 0; // the decoder is idle for want of input since then (0: it is not)
    let starvedMs = 0;
    const fail = (e: unknown) => {
      if (done) return;
      done = true;
      input.destroy();
      reject(e);
    };
    const refill = () => {
      if (off > 0) {
        stage.copyWithin(0, off, staged);
        staged -= off;
        off = 0;
      }
      while (queue.length && staged < stage.length) {
        const c = queue[0]!;
        const n = c.copy(stage, staged);
        staged += n;
        queued -= n;
        if (n === c.length) queue.shift();
        else queue[0] = c.subarray(n);
      }
      if (!ended && input.isPaused() && queued < PUMP_QUEUE / 2) input.resume();
    };
    const next = (): void => {
      if (done || busy) return;
      refill();
      const wanting = !flushing && !ended && staged < PUMP_MIN_IN; // more input comes with the next 'data'
      if (wanting) {
        if (onStarved && !waitingSince) waitingSince = performance.now();
        return;
      }
      if (waitingSince) {
        starvedMs += performance.now() - waitingSince;
        waitingSince = 0;
        if (starvedMs >= STARVED_MS) {
          onStarved?.();
          onStarved = undefined;
        }
      }
      if (!flushing && staged === 0) {
        done = true;
        try {
          codecs.finish(handle);
        } catch (e) {
          return reject(wrapError(e));
        }
        // after a microtask: when the last step ends here, its piece is handed on just after this returns
        return void Promise.resolve()
          .then(() => Promise.all(held))
          .then(() => resolve(), reject);
      }
      const wait = held[which];
      if (wait) {
        busy = true;
        held[which] = undefined;
        wait.then(() => {
          busy = false;
          next();
        }, fail);
        return;
      }
      const slot = which;
      const out = outs[slot]!;
      which ^= 1;
      busy = true;
      decodeInto(handle, stage.subarray(0, staged), off, out, (err, r) => {
        busy = false;
        if (done) return;
        if (err) return fail(wrapError(err));
        const [used, drained, produced] = r;
        off += used;
        // as in NativeDecompressStream: input left over without progress would be lost, so it is an error
        if (!drained && used === 0 && produced === 0) return fail(wrapError(new Error(`the decoder stopped with ${staged - off} input bytes left`)));
        flushing = !drained;
        next(); // the next piece decodes into the other buffer while this one is handed on
        if (produced === 0) return;
        try {
          const pending = onChunk(out.subarray(0, produced));
          if (pending instanceof Promise) {
            held[slot] = pending;
            pending.catch(fail);
          }
        } catch (e) {
          fail(e);
        }
      });
    };
    input.on('data', (c: Buffer) => {
      if (first && c.length) {
        first = false;
        try {
          check?.(c);
        } catch (e) {
          return fail(e);
        }
      }
      queue.push(c);
      queued += c.length;
      if (queued >= PUMP_QUEUE) input.pause();
      next();
    });
    input.once('end', () => {
      ended = true;
      next();
    });
    input.once('error', fail);
    input.once('close', () => {
      if (!ended) fail(new Error('the layer stream closed before its end'));
    });
  });
}
