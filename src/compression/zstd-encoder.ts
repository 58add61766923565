import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { compressFrame } from './encoder-pool.js';

/**
 * Deterministic zstd: the input is cut into frames of FRAME_INPUT bytes (the last one shorter), each compressed on
 * its own by the WebAssembly zstd of the pinned @bokuweb/zstd-wasm (encoder-pool.ts), and the frames are written in
 * order. A zstd stream may hold any number of frames and decoders return their contents concatenated (RFC 8878,
 * section 3.1), so this is one valid layer. Why not the system `zstd` binary: the same level gives other bytes
 * between zstd versions (https://github.com/facebook/zstd/issues/4049) and zstd does not promise otherwise
 * (https://github.com/facebook/zstd/issues/2949); the WebAssembly build is the same on every install. Frames also let
 * one large layer use every core, and the bytes do not depend on how many.
 *
 * Measured on a 264 MiB layer of the bench's content mix, level 3, one core: 4 MiB frames 194 MiB/s at ratio
 * 0.454 (1 MiB: 0.471, 8 MiB: 0.451); the zstd 1.5.4 CLI with -T1 268 MiB/s at 0.459.
 */
export const FRAME_INPUT = 4 << 20;
/**
 * Frames of one stream compressing at once: two while no more frames than workers are in flight (one large layer
 * keeps two cores busy), else one (several layers already do, and each frame held costs 4 MiB).
 */
const inFlightLimit = () => (framesInFlight <= availableParallelism() ? 2 : 1);
let framesInFlight = 0;

export class FramedZstd extends Transform {
  /** A frame buffer back from a worker, to fill again. */
  private readonly spare: ArrayBuffer[] = [];
  private frame = Buffer.allocUnsafeSlow(FRAME_INPUT);
  private filled = 0;
  private readonly pending: Promise<Buffer>[] = [];
  private sawInput = false;

  constructor(private readonly level: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.sawInput ||= chunk.length > 0;
    void this.addInput(chunk).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.filled > 0 || !this.sawInput) this.submit();
    void this.drain(0).then(() => cb(), cb);
  }

  private async addInput(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, FRAME_INPUT - this.filled);
      chunk.copy(this.frame, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === FRAME_INPUT) {
        this.submit();
        await this.drain(inFlightLimit() - 1);
        const reuse = this.spare.pop();
        this.frame = reuse ? Buffer.from(reuse) : Buffer.allocUnsafeSlow(FRAME_INPUT);
        this.filled = 0;
      }
    }
  }

  /** Hands the current frame buffer to a worker (it comes back through `spare`). */
  private submit(): void {
    framesInFlight++;
    const job = compressFrame(this.frame.buffer as ArrayBuffer, this.filled, this.level, (b) => {
      if (this.spare.length === 0) this.spare.push(b); // one spare is enough for the next frame; more only hold memory
    });
    void job.finally(() => framesInFlight--).catch(() => {});
    job.catch(() => {}); // observed by drain(); a stream destroyed meanwhile must not leave an unhandled rejection
    this.pending.push(job);
  }

  /** Writes finished frames, in order, until at most `keep` are still compressing. */
  private async drain(keep: number): Promise<void> {
    while (this.pending.length > keep) {
      const out = await (this.pending[0] as Promise<Buffer>);
      this.pending.shift();
      this.push(out);
    }
  }
}
