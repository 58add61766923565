import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { NixregError } from '../errors.js';

/**
 * Worker threads that compress one zstd frame per job with the WebAssembly zstd of @bokuweb/zstd-wasm (pinned to an
 * exact version in package.json). A job's bytes depend only on its input and level (ZSTD_compress, one frame, no
 * threads inside), so which worker runs it, and how many workers there are, never changes the output.
 *
 * The worker source is evaluated from a string (CommonJS) and loads the package by its resolved path: the CLI runs
 * from an esbuild bundle, where a worker file next to this module would not exist, while the package (with its
 * .wasm file) stays in node_modules.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.modulePath);
zstd.init().then(
  () => {
    parentPort.on('message', ({ id, input, level }) => {
      try {
        const out = zstd.compress(new Uint8Array(input), level);
        parentPort.postMessage({ id, out }, [out.buffer]);
      } catch (e) {
        parentPort.postMessage({ id, error: String((e && e.message) || e) });
      }
    });
    parentPort.postMessage({ ready: true });
  },
  (e) => parentPort.postMessage({ initError: String((e && e.message) || e) }),
);
`;

interface Job {
  resolve(out: Buffer): void;
  reject(err: Error): void;
}

class PoolWorker {
  readonly worker: Worker;
  readonly jobs = new Map<number, Job>();

  constructor(modulePath: string, onDead: (w: PoolWorker) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { modulePath } });
    this.worker.unref();
    this.worker.on('message', (m: { id?: number; out?: Uint8Array; error?: string; initError?: string }) => {
      if (m.initError !== undefined) return this.fail(`cannot load the WebAssembly zstd encoder: ${m.initError}`, onDead);
      if (m.id === undefined) return;
      const job = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (this.jobs.size === 0) this.worker.unref();
      if (!job) return;
      if (m.out) job.resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
      else job.reject(new NixregError(`zstd compression failed: ${m.error ?? 'no output'}`));
    });
    this.worker.on('error', (e) => this.fail(`zstd compression failed: ${e.message}`, onDead));
    this.worker.on('exit', (code) => this.fail(`zstd compression failed: its worker thread exited (${code})`, onDead));
  }

  run(id: number, input: Buffer, level: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.jobs.size === 0) this.worker.ref(); // a pending job keeps the process alive; an idle pool does not
      this.jobs.set(id, { resolve, reject });
      this.worker.postMessage({ id, input: input.buffer, level }, [input.buffer as ArrayBuffer]);
    });
  }

  private fail(message: string, onDead: (w: PoolWorker) => void): void {
    onDead(this);
    for (const job of this.jobs.values()) job.reject(new NixregError(message));
    this.jobs.clear();
    void this.worker.terminate();
  }
}

const MAX_WORKERS = 4;
let workers: PoolWorker[] = [];
let nextId = 0;
let modulePath: string | undefined;

/**
 * Compresses `input` (a Buffer that owns its whole ArrayBuffer: it is transferred, so the caller must not touch it
 * afterwards) into one zstd frame on the least busy worker.
 */
export function compressFrame(input: Buffer, level: number): Promise<Buffer> {
  if (input.byteOffset !== 0 || input.byteLength !== input.buffer.byteLength) throw new Error('compressFrame: input must own its ArrayBuffer');
  modulePath ??= createRequire(import.meta.url).resolve('@bokuweb/zstd-wasm');
  const size = Math.min(MAX_WORKERS, availableParallelism());
  if (workers.length < size && workers.every((w) => w.jobs.size > 0)) {
    workers.push(new PoolWorker(modulePath, (dead) => (workers = workers.filter((w) => w !== dead))));
  }
  const target = workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  return target.run(nextId++, input, level);
}
