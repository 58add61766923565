import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { DockerArchiveSink } from '../archive/docker-archive-sink.js';
import { compressArchiveStream, type ArchiveCompression } from '../compression/archive.js';
import type { ArchiveResult, RepoTag } from '../archive/docker-archive-writer.js';
import { parseDigest } from '../digest/sha256.js';
import { toSRI } from '../digest/nixhash.js';
import { integrityError, usageError } from '../errors.js';
import type { WantedPlatform } from '../manifest/platform.js';
import { normalizeTaggedName, parseImageReference } from '../reference/reference.js';
import { clientOptions, type RegistryAccess } from '../registry/access.js';
import { openAtomic, type AtomicFile } from '../util/atomic-file.js';
import { copyImage } from './copy.js';
import { pullIntoFile, SizeMispredicted } from './direct-pull.js';
import { asWriteError } from '../util/write-error.js';
import { openRegistrySource } from './registry-source.js';
import type { CopyProgress, ImageSource } from './types.js';

/** What `dockerTools.pullImage` takes, plus the client options skopeo would take on its command line. */
export interface PullOptions extends RegistryAccess {
  imageName: string; // may carry :tag or @digest
  digest?: string;
  output: string; // a path, or '-' for stdout
  platform: WantedPlatform;
  finalImageName?: string; // default: imageName without tag/digest
  finalImageTag?: string; // default: latest
  expectedSha256?: Buffer; // flat hash of the whole archive (--sha256 / --hash)
  force?: boolean;
  jobs?: number;
  progress?: CopyProgress;
  /** Called once the image is resolved, before any layer is fetched. */
  onResolved?(source: ImageSource): void;
  stdout?: Writable;
  /**
   * Whole-archive compression (`--compress gz|zstd`). `expectedSha256` and the returned `sha256`/`size` stay those
   * of the UNCOMPRESSED docker-archive: that is what pullImage's outputHash pins, so a pin is valid either way.
   */
  compress?: ArchiveCompression;
  /** Hash the archive (default true; always when expectedSha256 is set): the result's sha256 is null without it. */
  hashArchive?: boolean;
  /** Decompress layers straight into place in a file output when their sizes can be known first (default true; see direct-pull.ts). */
  direct?: boolean;
  log?: (line: string) => void;
}

export interface PullResult extends ArchiveResult {
  imageName: string;
  indexDigest: string | null;
  manifestDigest: string;
  output: string;
  source: ImageSource;
}

/**
 * `nixreg pull`: the docker-archive `dockerTools.pullImage` produces (skopeo 1.9.3, byte for byte), written
 * atomically (or to stdout) and hashed while it is written. A wrong expected hash leaves no file.
 */
export async function pullImage(o: PullOptions): Promise<PullResult> {
  const ref = parseImageReference(o.imageName);
  if (o.digest !== undefined) {
    parseDigest(o.digest, '--digest');
    if (ref.digest && ref.digest !== o.digest) throw usageError(`${o.imageName} names digest ${ref.digest} but --digest is ${o.digest}`);
    ref.digest = o.digest;
  }
  const repoTag = normalizeTaggedName(`${o.finalImageName ?? ref.name}:${o.finalImageTag ?? 'latest'}`);
  const toStdout = o.output === '-';
  const file: AtomicFile | undefined = toStdout ? undefined : await openAtomic(o.output, { force: o.force });
  try {
    const source = await openRegistrySource(ref, {
      platform: o.platform,
      ...clientOptions(o),
    });
    o.onResolved?.(source);
    const out = file ? file.stream : (o.stdout ?? process.stdout);
    const compressed = o.compress && o.compress !== 'none' ? compressArchiveStream(o.compress, out, { endOut: !!file }) : undefined;
    const hash = o.hashArchive !== false || !!o.expectedSha256;
    const direct =
      file?.seekable && !compressed && o.direct !== false
        ? await pullDirect(source, file, [repoTag], { jobs: o.jobs, progress: o.progress, hash, log: o.log })
        : undefined;
    const result =
      direct ?? (await copyImage(source, new DockerArchiveSink(compressed?.input ?? out, [repoTag], hash), { jobs: o.jobs, progress: o.progress }));
    if (compressed) {
      compressed.input.end();
      await compressed.done;
    }
    if (o.expectedSha256 && !o.expectedSha256.equals(result.sha256!))
      throw integrityError(`hash mismatch for ${o.imageName}: specified: ${toSRI(o.expectedSha256)} got: ${toSRI(result.sha256!)}`);
    await file?.commit();
    return {
      ...result,
      imageName: o.imageName,
      indexDigest: source.indexDigest,
      manifestDigest: source.manifestDigest,
      output: o.output,
      source,
    };
  } catch (err) {
    await file?.abort();
    throw err;
  }
}

/** The direct path into the atomic file's temporary file; undefined (file emptied again) when it does not apply. */
async function pullDirect(
  source: ImageSource,
  file: AtomicFile,
  repoTags: readonly RepoTag[],
  opts: { jobs?: number; progress?: CopyProgress; hash: boolean; log?: (line: string) => void },
): Promise<ArchiveResult | undefined> {
  const fh = await open(file.tempPath, 'r+');
  try {
    return await pullIntoFile(source, fh, repoTags, opts);
  } catch (err) {
    if (!(err instanceof SizeMispredicted)) throw asWriteError(file.path, err);
    opts.log?.(`${err.message}; pulling again through the spool`);
    await fh.truncate(0);
    return undefined;
  } finally {
    await fh.close();
  }
}
