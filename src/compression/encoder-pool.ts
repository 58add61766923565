import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { NixregError } from '../errors.js';

/**
 * Worker threads for the two encoders that run as JavaScript or WebAssembly, so that they use every core and leave
 * the main thread to the network:
 *   - zstd frames: one job compresses one frame with the WebAssembly zstd of @bokuweb/zstd-wasm (ZSTD_compress: a
 *     pure function of the input and level, so which worker runs it never changes the bytes);
 *   - pako gzip streams: a stream stays on the worker that opened it (pako's state lives there); each job feeds it
 *     one chunk, or finishes it.
 * Both packages are pinned to exact versions in package.json. The worker source is evaluated from a string
 * (CommonJS) and loads the packages by their resolved paths: the CLI runs from an esbuild bundle, where a worker
 * file next to this module would not exist, while the packages stay in node_modules.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let zstd;
let ready;
const streams = new Map();
const reply = (id, chunks, back) => parentPort.postMessage({ id, chunks, back }, [...chunks.map((c) => c.buffer), ...(back ? [back] : [])]);
parentPort.on('message', async (m) => {
  try {
    if (m.op === 'frame') {
      if (!zstd) {
        if (!workerData.zstdPath) throw new Error('the package @bokuweb/zstd-wasm is not installed next to nixreg (reinstall nixreg)');
        zstd = require(workerData.zstdPath);
        ready = zstd.init();
      }
      await ready;
      // the input goes back with the frame, for the caller to fill again
      return reply(m.id, [zstd.compress(new Uint8Array(m.input, 0, m.length), m.level)], m.input);
    }
    if (m.op === 'abort') return streams.delete(m.sid);
    let s = streams.get(m.sid);
    if (!s) {
      if (!workerData.pakoPath) throw new Error('the package pako is not installed next to nixreg (reinstall nixreg)');
      const { Deflate } = require(workerData.pakoPath);
      const chunks = [];
      const deflate = new Deflate({ level: m.level, gzip: true, windowBits: 15, memLevel: 8, chunkSize: 256 * 1024, legacyHash: true });
      deflate.onData = (c) => chunks.push(c.byteOffset === 0 && c.byteLength === c.buffer.byteLength ? c : c.slice());
      deflate.onEnd = () => {};
      s = { deflate, chunks };
      streams.set(m.sid, s);
    }
    const ok = m.op === 'end' ? s.deflate.push(new Uint8Array(0), true) : s.deflate.push(new Uint8Array(m.input, 0, m.length), false);
    if (!ok) throw new Error(s.deflate.msg || 'zlib status ' + s.deflate.err);
    if (m.op === 'end') streams.delete(m.sid);
    reply(m.id, s.chunks.splice(0), m.input); // pako copied the input into its window: the buffer goes back
  } catch (e) {
    if (m.sid !== undefined) streams.delete(m.sid);
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});
`;

interface Job {
  resolve(out: Buffer[], back?: ArrayBuffer): void;
  reject(err: Error): void;
}

interface Message {
  op: 'frame' | 'data' | 'end' | 'abort';
  input?: ArrayBuffer;
  /** frame: bytes of `input` to compress (the rest of the buffer is unused) */
  length?: number;
  level: number;
  sid?: number;
}

class PoolWorker {
  readonly worker: Worker;
  readonly jobs = new Map<number, Job>();
  /** gzip streams pinned here (each counts as load while open). */
  streams = 0;
  private dead: string | undefined;

  constructor(onDead: (w: PoolWorker) => void) {
    const workerData = { zstdPath: resolvePackage('@bokuweb/zstd-wasm'), pakoPath: resolvePackage('pako') };
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; chunks?: Uint8Array[]; back?: ArrayBuffer; error?: string }) => {
      const job = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (this.jobs.size === 0) this.worker.unref();
      if (!job) return;
      if (m.chunks)
        job.resolve(
          m.chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
          m.back,
        );
      else job.reject(new NixregError(`compression failed: ${m.error ?? 'no output'}`));
    });
    this.worker.on('error', (e) => this.fail(`compression failed: ${e.message}`, onDead));
    this.worker.on('exit', (code) => this.fail(`compression failed: its worker thread exited (${code})`, onDead));
  }

  get load(): number {
    return this.jobs.size + this.streams;
  }

  run(message: Message, onBack?: (b: ArrayBuffer) => void): Promise<Buffer[]> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (this.dead) return reject(new NixregError(this.dead));
      if (this.jobs.size === 0) this.worker.ref(); // a pending job keeps the process alive; an idle pool does not
      this.jobs.set(id, {
        resolve: (out, back) => {
          if (back && onBack) onBack(back);
          resolve(out);
        },
        reject,
      });
      this.worker.postMessage({ ...message, id }, message.input ? [message.input] : []);
    });
  }

  /** Sends without waiting for an answer (the worker answers nothing to 'abort'). */
  post(message: Message): void {
    if (!this.dead) this.worker.postMessage({ ...message, id: -1 });
  }

  private fail(message: string, onDead: (w: PoolWorker) => void): void {
    if (this.dead) return;
    this.dead = message;
    onDead(this);
    for (const job of this.jobs.values()) job.reject(new NixregError(message));
    this.jobs.clear();
    void this.worker.terminate();
  }
}

/** The package's entry file, or undefined when it is not installed (the worker then fails that job in one line). */
function resolvePackage(name: string): string | undefined {
  try {
    return createRequire(import.meta.url).resolve(name);
  } catch {
    return undefined;
  }
}

const MAX_WORKERS = 4;
let workers: PoolWorker[] = [];
let nextId = 0;
let nextStream = 0;

function leastBusy(): PoolWorker {
  const size = Math.min(MAX_WORKERS, availableParallelism());
  if (workers.length < size && workers.every((w) => w.load > 0)) workers.push(new PoolWorker((dead) => (workers = workers.filter((w) => w !== dead))));
  return workers.reduce((a, b) => (b.load < a.load ? b : a));
}

/**
 * One zstd frame of frame[0..length). `frame`'s ArrayBuffer is transferred to the worker (the caller must not touch it)
 * and handed back to `onBack` once compressed, to be filled again: a layer's frame buffers are allocated once.
 */
export async function compressFrame(frame: ArrayBuffer, length: number, level: number, onBack: (b: ArrayBuffer) => void): Promise<Buffer> {
  const [out] = await leastBusy().run({ op: 'frame', input: frame, length, level }, onBack);
  return out ?? Buffer.alloc(0);
}

export interface GzipStream {
  /** Feeds a chunk (copied into a recycled buffer: callers may reuse theirs); answers the output it completed. */
  write(chunk: Buffer): Promise<Buffer[]>;
  /** Finishes the stream; answers the rest of the output. */
  end(): Promise<Buffer[]>;
  /** Drops the stream's state on its worker (a stream given up before end()). */
  abort(): void;
}

/** A pako gzip stream (canonical zlib bytes, see gzip-encoder.ts) on one worker. */
export function openGzipStream(level: number): GzipStream {
  const worker = leastBusy();
  const sid = nextStream++;
  worker.streams++;
  const spare: ArrayBuffer[] = [];
  const bufferFor = (chunk: Buffer): ArrayBuffer => {
    const i = spare.findIndex((b) => b.byteLength >= chunk.length);
    const buf = i >= 0 ? (spare.splice(i, 1)[0] as ArrayBuffer) : (Buffer.allocUnsafeSlow(Math.max(chunk.length, 1 << 20)).buffer as ArrayBuffer);
    chunk.copy(Buffer.from(buf));
    return buf;
  };
  let closed = false;
  const close = () => {
    if (!closed) worker.streams--;
    closed = true;
  };
  return {
    write: (chunk) => worker.run({ op: 'data', sid, level, input: bufferFor(chunk), length: chunk.length }, (b) => spare.push(b)),
    end: () => worker.run({ op: 'end', sid, level }).finally(close),
    abort: () => {
      if (closed) return;
      close();
      worker.post({ op: 'abort', sid, level });
    },
  };
}
