import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SpoolDir } from '../image/layer-spool.js';

/**
 * Layers of a source that can only be read forward (a gzip/zstd-compressed archive: `sequentialReads`), served in
 * the top-down order `export` walks them. WHY: reaching layer N of such an archive inflates everything before it,
 * so the walk (last layer first) inflated the archive once per layer: quadratic in the layer count. Here the first
 * request for layer i streams the layers before it, in order, into spool files and hands out layer i itself
 * live; later requests for those layers read their spool file. The archive is inflated once; the disk holds the
 * lower layers' tars until the export ends (skopeo decompresses such an archive to a temporary file too).
 */
export class ForwardLayers {
  private next = 0; // layers below this were spooled, or handed out live
  private readonly spooled = new Map<number, string>();
  private readonly dir: SpoolDir;

  constructor(
    private readonly open: (index: number) => Promise<Readable>,
    tmpDir?: string,
  ) {
    this.dir = new SpoolDir(tmpDir);
  }

  async layer(i: number): Promise<Readable> {
    const file = this.spooled.get(i);
    if (file) return createReadStream(file, { highWaterMark: 1 << 20 });
    // Behind the cursor and not spooled: it was handed out live once and is asked for again (a hard-link copy,
    // rare): inflating forward to it once more is the only way back.
    if (i < this.next) return this.open(i);
    for (; this.next < i; this.next++) {
      const path = this.dir.next();
      await pipeline(await this.open(this.next), createWriteStream(path, { highWaterMark: 1 << 20 }));
      this.spooled.set(this.next, path);
    }
    this.next = i + 1;
    return this.open(i);
  }

  close(): Promise<void> {
    return this.dir.remove();
  }
}
