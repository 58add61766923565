import { Writable, type Readable } from 'node:stream';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { DockerArchiveSink } from '../archive/docker-archive-sink.js';
import { REUSABLE_WRITES, type ArchiveResult, type RepoTag } from '../archive/docker-archive-writer.js';
import { copyImage } from '../image/copy.js';
import { SizeMispredicted } from '../image/direct-pull.js';
import { openRegistrySource, type RegistrySourceOptions } from '../image/registry-source.js';
import type { CopyProgress, ImageSource } from '../image/types.js';
import { parseManifest } from '../manifest/manifest.js';
import { selectPlatform, type WantedPlatform } from '../manifest/platform.js';
import { normalizeTaggedName, parseImageReference, type ImageReference } from '../reference/reference.js';
import { RegistryClient } from '../registry/client.js';
import { openAtomic } from '../util/atomic-file.js';
import { NixregError, describeSystemError, usageError } from '../errors.js';
import { toNix32, toSRI } from '../digest/nixhash.js';
import type { PrefetchResult } from './output.js';
import { hashArchiveStreaming } from './stream-hash.js';
import { makeTempDir } from '../util/temp-dir.js';
import { asWriteError } from '../util/write-error.js';

export interface PrefetchOptions {
  imageName: string;
  imageTag?: string;
  imageDigest?: string;
  finalImageName?: string;
  finalImageTag?: string;
  platform: WantedPlatform;
  /** 'all': every platform of the index. */
  allPlatforms?: boolean;
  /** Keep nix-prefetch-docker's old behaviour of pinning the index digest. */
  indexDigest?: boolean;
  legacySha256?: boolean;
  /** Also write the archive here (atomically). */
  output?: string;
  force?: boolean;
  jobs?: number;
  client: Omit<RegistrySourceOptions, 'platform'>;
  progress?: CopyProgress;
  log?: (line: string) => void;
}

export interface PrefetchRun extends PrefetchResult {
  sha256: Buffer;
  size: number;
  /** The digest the tag resolved to when it was an index (stderr names it). */
  resolvedIndexDigest: string | null;
}

/** A Writable that discards: the archive only exists as the stream the writer hashes. */
const discard = () =>
  Object.assign(
    new Writable({
      highWaterMark: 1 << 20,
      write(_c, _e, cb) {
        cb();
      },
    }),
    { [REUSABLE_WRITES]: true },
  );

/**
 * nix-prefetch-docker without skopeo and without a tarball: resolve the tag (to the platform's manifest digest,
 * the pin pullImage needs, unless --index-digest), generate the exact archive `nixreg pull` would write and
 * hash it as it streams. With several platforms, each compressed layer blob is fetched once per run.
 */
export async function prefetch(o: PrefetchOptions): Promise<PrefetchRun[]> {
  const ref = parseImageReference(o.imageName);
  if (ref.digest && o.imageDigest && ref.digest !== o.imageDigest)
    throw usageError(`${o.imageName} names digest ${ref.digest} but --image-digest is ${o.imageDigest}`);
  const tag = o.imageTag ?? ref.tag ?? 'latest';
  // the name as the user wrote it (pullImage's imageName), without any :tag or @digest it carried
  let imageName = o.imageName;
  if (ref.digest) imageName = imageName.slice(0, imageName.lastIndexOf('@'));
  if (ref.tag && imageName.endsWith(`:${ref.tag}`)) imageName = imageName.slice(0, -ref.tag.length - 1);
  const finalImageName = o.finalImageName ?? imageName;
  const finalImageTag = o.finalImageTag ?? o.imageTag ?? ref.tag ?? 'latest';
  const pinned = o.imageDigest ?? ref.digest;

  const client = new RegistryClient({ ...o.client, registry: ref.registry, repository: ref.repository });
  const top = await client.getManifest(pinned ?? tag);
  const parsed = parseManifest(top.bytes, top.mediaType, `manifest ${ref.registry}/${ref.repository}${pinned ? '@' + pinned : ':' + tag}`);
  const isIndex = parsed.kind === 'index';
  if (o.allPlatforms && !isIndex) throw usageError(`--platform all: ${ref.name} ${pinned ?? tag} is a single-platform image, not an index`);

  const targets: { platform: WantedPlatform; digest: string }[] = [];
  if (!isIndex) targets.push({ platform: o.platform, digest: top.digest });
  else if (o.allPlatforms) {
    for (const d of parsed.manifests) {
      const p = d.platform;
      if (!p || p.os === 'unknown' || p.architecture === 'unknown') continue; // attestations
      targets.push({ platform: { os: p.os, arch: p.architecture, ...(p.variant ? { variant: p.variant } : {}) }, digest: d.digest });
    }
  } else targets.push({ platform: o.platform, digest: selectPlatform(parsed, o.platform).digest });

  const blobs = await BlobRunCache.create();
  try {
    const runs: PrefetchRun[] = [];
    for (const t of targets) {
      const pinRef: ImageReference = { ...ref, tag: undefined, digest: t.digest };
      const opened = await openRegistrySource(pinRef, { ...o.client, platform: t.platform });
      // one platform: nothing to share, so no tee of every compressed byte into a temp file
      const source = targets.length > 1 ? blobs.wrap(opened) : opened;
      const repoTag = normalizeTaggedName(`${finalImageName}:${finalImageTag}`);
      const file = o.output && targets.length === 1 ? await openAtomic(o.output, { force: o.force }) : undefined;
      try {
        const r =
          (file ? undefined : await streamed(source, repoTag, targets.length === 1 ? Math.max(1, o.jobs ?? 4) - 1 : 0, o)) ??
          (await copyImage(source, new DockerArchiveSink(file ? file.stream : discard(), [repoTag]), {
            jobs: o.jobs,
            progress: o.progress,
          }));
        await file?.commit();
        const sha256 = r.sha256!; // the sink hashes by default: prefetch exists for this hash
        const imageDigest = isIndex && (o.indexDigest || (pinned && pinned === top.digest)) ? top.digest : t.digest;
        runs.push({
          imageName,
          imageDigest,
          hash: o.legacySha256 ? toNix32(sha256) : toSRI(sha256),
          finalImageName,
          finalImageTag,
          os: t.platform.os,
          arch: t.platform.arch,
          variant: t.platform.variant,
          sha256,
          size: r.size,
          resolvedIndexDigest: isIndex ? top.digest : null,
        });
      } catch (err) {
        await file?.abort();
        throw o.output ? asWriteError(o.output, err) : err;
      }
    }
    return runs;
  } finally {
    await blobs.remove();
  }
}

/**
 * The archive hash straight from the decompressed layers (stream-hash.ts); undefined where the sizes cannot be
 * known first, or turn out other than the gzip trailers said: then the general pipeline hashes (its progress
 * events start again from the first layer).
 */
async function streamed(source: ImageSource, repoTag: RepoTag, ahead: number, o: PrefetchOptions): Promise<ArchiveResult | undefined> {
  try {
    return await hashArchiveStreaming(source, [repoTag], { ahead, progress: o.progress, log: o.log });
  } catch (err) {
    if (!(err instanceof SizeMispredicted)) throw err;
    o.log?.(`${err.message}; hashing again through the spool`);
    return undefined;
  }
}

/**
 * For multi-platform runs: the first open of a layer blob tees its (verified) bytes to a run-local temp file,
 * later opens of the same digest read that file, so a base layer shared by amd64 and arm64 is fetched once.
 */
class BlobRunCache {
  private readonly files = new Map<string, Promise<string>>();
  private constructor(private readonly dir: string) {}
  static async create(): Promise<BlobRunCache> {
    try {
      return new BlobRunCache(await makeTempDir('nixreg-prefetch-'));
    } catch (err) {
      throw spoolWriteError(tmpdir(), err);
    }
  }
  wrap(source: ImageSource): ImageSource {
    return {
      ...source,
      openLayer: async (i: number): Promise<Readable> => {
        const digest = source.layers[i]!.digest;
        const cached = this.files.get(digest);
        if (cached) return createReadStream(await cached, { highWaterMark: 1 << 20 });
        const raw = await source.openLayer(i);
        const path = join(this.dir, digest.replace(':', '-'));
        const out = new PassThrough({ highWaterMark: 1 << 20 });
        const dir = this.dir;
        const saved = pipeline(raw, async (src: AsyncIterable<Buffer>) => {
          const w = createWriteStream(path);
          let failed: unknown;
          w.on('error', (e) => {
            failed ??= e;
            w.emit('drain');
          });
          const check = () => {
            if (failed) throw spoolWriteError(dir, failed);
          };
          try {
            for await (const chunk of src) {
              check();
              if (!w.write(chunk)) await new Promise<void>((r) => w.once('drain', () => r()));
              check();
              // a reader that gave up (destroyed `out`) stops taking bytes; the file is still completed for later opens
              if (!out.destroyed && !out.write(chunk)) await new Promise<void>((r) => (out.once('drain', r), out.once('close', r)));
            }
          } finally {
            if (!w.closed) {
              const closed = new Promise<void>((r) => w.once('close', () => r()));
              if (failed) w.destroy();
              else w.end();
              await closed;
            }
          }
          check();
          out.end();
        }).then(() => path);
        saved.catch((e) => {
          this.files.delete(digest);
          out.destroy(e);
        });
        this.files.set(digest, saved);
        return out;
      },
    };
  }
  async remove(): Promise<void> {
    await Promise.allSettled(this.files.values());
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A failed write to the run's layer spool (in TMPDIR) as one line naming the directory and what to do. */
function spoolWriteError(dir: string, err: unknown): NixregError {
  if (err instanceof NixregError) return err;
  return new NixregError(`cannot write the layer spool in ${dir}: ${describeSystemError(err)}; set TMPDIR to a directory with more room`);
}
