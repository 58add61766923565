import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressByMagic } from '../compression/decompress.js';
import { STREAM_BUFFER } from '../util/stream-buffer.js';
import { DIGEST_RE } from '../digest/sha256.js';
import { integrityError, NixregError } from '../errors.js';
import type { ArchiveLayer } from '../archive/docker-archive-writer.js';
import { SpoolDir, spoolLayer, type SpooledLayer } from './layer-spool.js';
import type { CopyProgress, ImageSink, ImageSource } from './types.js';

export interface CopyOptions {
  /** Layers downloading/decompressing ahead of the writer at once (default 4, like GGCR). */
  jobs?: number;
  /** Where uncompressed layers wait for their turn (default $TMPDIR). */
  tmpDir?: string;
  /** Layers up to this uncompressed size stay in memory instead of a spool file. */
  memLimit?: number;
  progress?: CopyProgress;
}

/** `rootfs.diff_ids` of an image config, checked against the manifest's layer count. */
export function configDiffIDs(configBytes: Buffer, layerCount: number, what: string): string[] {
  let cfg: { rootfs?: { diff_ids?: unknown } };
  try {
    cfg = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new NixregError(`${what}: the image config is not valid JSON`);
  }
  const ids = cfg?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && DIGEST_RE.test(d)))
    throw new NixregError(`${what}: the image config has no valid rootfs.diff_ids`);
  if (ids.length !== layerCount) throw integrityError(`${what}: the manifest has ${layerCount} layers but the config lists ${ids.length} diff_ids`);
  return ids as string[];
}

/**
 * A layer's uncompressed bytes: raw (verified as it streams) → progress count → decompress by magic. If the raw
 * stream fails (reset, digest mismatch at its end), `fetched` rejects and `plain` is destroyed with that error.
 */
export async function openPlainLayer(source: ImageSource, i: number, p: CopyProgress): Promise<{ raw: Readable; plain: Readable; fetched: Promise<void> }> {
  p.layerStart?.(i, source.layers[i]!);
  const raw = await source.openLayer(i);
  const count = new Transform({
    highWaterMark: STREAM_BUFFER,
    transform(chunk: Buffer, _e, cb) {
      p.layerBytes?.(i, chunk.length);
      cb(null, chunk);
    },
  });
  const fetched = pipeline(raw, count);
  const plain = decompressByMagic(count);
  fetched.catch((e) => plain.destroy(e));
  return { raw, plain, fetched };
}

/** The manifest indexes of the distinct layers (first appearance of each diffID), and each repeat with its first. */
export function distinctLayers(diffIDs: readonly string[]): { unique: number[]; repeats: Array<[index: number, sameAs: number]> } {
  const firstIndex = new Map<string, number>();
  const repeats: Array<[number, number]> = [];
  diffIDs.forEach((d, i) => {
    const first = firstIndex.get(d);
    if (first === undefined) firstIndex.set(d, i);
    else repeats.push([i, first]);
  });
  return { unique: [...firstIndex.values()], repeats };
}

export const diffIDMismatch = (source: ImageSource, i: number, got: string, want: string) =>
  integrityError(`${source.description}: layer ${i} (${source.layers[i]!.digest}) uncompressed to ${got}, but the config's rootfs.diff_ids[${i}] is ${want}`);

/**
 * The one copy pipeline: download layers (up to `jobs` ahead of the writer), decompress by magic, hash the
 * uncompressed bytes once (diffID + size) while spooling, verify against the config's diff_ids, and feed the
 * sink strictly in manifest order. A layer repeated in the manifest (same diffID) is fetched and written once.
 * The look-ahead window bounds both concurrency and spool usage: at most `jobs` layers are in flight or waiting.
 */
export async function copyImage<R>(source: ImageSource, sink: ImageSink<R>, opts: CopyOptions = {}): Promise<R> {
  const jobs = Math.max(1, opts.jobs ?? 4);
  const p = opts.progress ?? {};
  const diffIDs = configDiffIDs(source.configBytes, source.layers.length, source.description);
  const { unique, repeats } = distinctLayers(diffIDs);
  p.begin?.(source.layers);
  for (const [i, sameAs] of repeats) p.layerSkipped?.(i, sameAs);
  const spool = new SpoolDir(opts.tmpDir);
  const inFlight: Promise<SpooledLayer>[] = [];
  const open = new Set<Readable>(); // raw downloads to cancel if the copy fails
  // A layer failing ahead of the writer fails the copy at once, not when the writer gets there.
  let failFast!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => (failFast = reject));
  failed.catch(() => {});

  const prepare = async (i: number): Promise<SpooledLayer> => {
    const { raw, plain, fetched } = await openPlainLayer(source, i, p);
    open.add(raw);
    // → spool (diffID + size); a failed download drops the partly decompressed layer
    let layer: SpooledLayer;
    try {
      [layer] = await Promise.all([spoolLayer(plain, spool, opts.memLimit), fetched]);
    } finally {
      open.delete(raw);
    }
    if (layer.diffID !== diffIDs[i]) {
      await layer.release?.();
      throw diffIDMismatch(source, i, layer.diffID, diffIDs[i]!);
    }
    p.layerSpooled?.(i, layer.size);
    return layer;
  };
  const start = (u: number) => {
    if (u < unique.length && !inFlight[u]) {
      const pr = prepare(unique[u]!);
      pr.catch(failFast);
      inFlight[u] = pr;
    }
  };

  async function* layers(): AsyncGenerator<ArchiveLayer> {
    for (let u = 0; u < unique.length; u++) {
      for (let k = u; k < u + jobs; k++) start(k);
      const layer = await inFlight[u]!;
      yield {
        diffID: layer.diffID,
        size: layer.size,
        open: layer.open,
        ...(layer.file ? { file: layer.file } : {}),
        release: async () => {
          await layer.release?.();
          p.layerWritten?.(unique[u]!);
        },
      };
    }
  }

  let ok = false;
  try {
    const writing = sink.write({ configBytes: source.configBytes, configDigest: source.config.digest, diffIDs, layers: layers() });
    writing.catch(() => {}); // if `failed` wins, the caller aborts the output and the writer's late error is moot
    const r = await Promise.race([writing, failed]);
    ok = true;
    return r;
  } finally {
    for (const r of open) r.destroy();
    const cleaned = Promise.allSettled(inFlight).then(() => spool.remove());
    if (ok) await cleaned;
    else {
      // After a failure the downloads ahead were cut and normally settle at once. Under load one was seen never
      // to settle (its download's pipeline did not end after the raw stream was destroyed; cause not found), and
      // waiting for it left the process with nothing to wait on: wait at most FAILED_SETTLE_MS, then report the
      // error; its spool files go with the directory once it settles, or at exit (SpoolDir).
      cleaned.catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([cleaned, new Promise<void>((r) => (timer = setTimeout(r, FAILED_SETTLE_MS)))]).catch(() => {});
      clearTimeout(timer);
    }
  }
}

const FAILED_SETTLE_MS = 2000;
