import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ArchiveLayer } from '../archive/docker-archive-writer.js';
import { makeTempDirSync } from '../util/temp-dir.js';
import { asWriteError } from '../util/write-error.js';
import { drained } from '../util/drained.js';

/**
 * Why spool: a tar header carries the entry size BEFORE the data, but a registry sends compressed bytes, so the
 * uncompressed size of a layer is known only after decompressing all of it. And layers downloaded ahead
 * (--jobs) must wait somewhere until the archive reaches them. Options considered:
 *   - backpatch the header with pwrite: one pass for file outputs only, but the archive's flat sha256 must be
 *     computed in byte order, so it would need a second read of every layer — and stdout / prefetch's
 *     hashing sink cannot seek at all. Two code paths for a saving that the page cache mostly hides.
 *   - spool the compressed blob and decompress twice (count, then write): least disk, but gunzip is the
 *     slowest stage. Measured here (2 shared cores, under load; 64 MiB of half-random tar, node:zlib):
 *     gunzip 90–140 MiB/s, sha256 ~500 MiB/s, spool write+read through the page cache 360–730 MiB/s.
 *   - spool the decompressed layer (chosen; skopeo does the same): decompress + hash the diffID once,
 *     while it downloads, in parallel across layers; then header + copy. Same path for every sink, and no
 *     byte reaches the output before its layer's diffID is verified.
 *     the first measurement (bench/pull-memory.mjs, now bench/run.mjs), 512 MiB in 8 gzip layers: nixreg 6.4 s / 143 MiB peak RSS, skopeo 10.0 s / 31 MiB,
 *     byte-identical; peak RSS is flat in image size (256 MiB image: 128–145 MiB; a 230 KiB image: 114 MiB,
 *     most of it Node + module start-up).
 * Small layers (below `memLimit`, 1 MiB by default) stay in memory, so tiny images never touch the disk and peak
 * memory stays bounded by jobs × memLimit plus stream buffers.
 */

// 1 MiB spool reads/writes: 4x fewer syscalls and stream callbacks than 256 KiB; at most jobs x 2 MiB in buffers.
const SPOOL_IO_CHUNK = 1 << 20;

export interface SpooledLayer extends ArchiveLayer {
  inMemory: boolean;
}

export class SpoolDir {
  readonly path: string;
  private n = 0;
  private readonly onExit = () => rmSync(this.path, { recursive: true, force: true });
  constructor(base: string = process.env.TMPDIR || tmpdir()) {
    this.path = makeTempDirSync('nixreg-spool-', base);
    process.once('exit', this.onExit); // also covers the SIGINT handler's process.exit
  }
  next(): string {
    return join(this.path, `layer-${this.n++}`);
  }
  async remove(): Promise<void> {
    process.off('exit', this.onExit);
    await rm(this.path, { recursive: true, force: true });
  }
}

/** Consume `input` fully: sha256 + size, kept in memory up to `memLimit` bytes, else in a file under `dir`. */
export async function spoolLayer(input: Readable, dir: SpoolDir, memLimit = 1 << 20): Promise<SpooledLayer> {
  const hash = createHash('sha256');
  let size = 0;
  let chunks: Buffer[] | undefined = [];
  let file: ReturnType<typeof createWriteStream> | undefined;
  let path = '';
  try {
    for await (const c of input) {
      const chunk = c as Buffer;
      hash.update(chunk);
      size += chunk.length;
      if (chunks) {
        chunks.push(chunk);
        if (size <= memLimit) continue;
        path = dir.next();
        file = createWriteStream(path, { highWaterMark: SPOOL_IO_CHUNK });
        file.on('error', () => {}); // surfaces through drained()/finished(); a late one (after destroy) must not crash
        let ok = true;
        for (const b of chunks) ok = file.write(b);
        chunks = undefined;
        if (!ok) await drained(file, SPOOL_CLOSED);
      } else if (!file!.write(chunk)) {
        await drained(file!, SPOOL_CLOSED);
      }
    }
    if (file) {
      file.end();
      await finished(file);
    }
  } catch (err) {
    file?.destroy();
    if (path) await rm(path, { force: true });
    throw asWriteError(`the layer spool ${dir.path}`, err);
  }
  const diffID = 'sha256:' + hash.digest('hex');
  if (chunks) {
    const data = Buffer.concat(chunks);
    return { diffID, size, inMemory: true, open: () => Readable.from([data]) };
  }
  return {
    diffID,
    size,
    inMemory: false,
    open: () => createReadStream(path, { highWaterMark: SPOOL_IO_CHUNK }),
    file: path,
    release: () => rm(path, { force: true }),
  };
}

const SPOOL_CLOSED = 'the spool file was closed while writing';
