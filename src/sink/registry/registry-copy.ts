import pLimit from 'p-limit';
import type { Readable } from 'node:stream';
import { ExitCode, NixregError, usageError } from '../../errors.js';
import { parseManifest, type Descriptor } from '../../manifest/manifest.js';
import { RegistryClient } from '../../registry/client.js';
import type { Credentials } from '../../registry/types.js';
import { ProgressCounter, type BlobStatus } from './blob-upload.js';
import { clientOptions, type RegistryAccess } from '../../registry/access.js';
import { openDestination, parseDockerDestination, putTags } from './destination.js';
import type { PushResult } from './push-conf.js';
import { silentProgress, type PushProgress } from './progress.js';
import { PushCache } from './push-cache.js';
import { mountCandidates, mountFromAny } from './mount.js';

/**
 * `nixreg push docker://a/x:1 docker://b/y:1`: a registry-to-registry copy that keeps every digest. Manifests
 * are re-PUT byte for byte; each blob is HEADed at the destination, mounted when both repositories are on the
 * same registry or when --mount-from or the push cache names a destination repository that has it, and otherwise
 * streamed GET → PATCH (size known, so Content-Length is sent) with the source stream verified on the way:
 * nothing touches the disk. An index is copied with all its manifests.
 */
export interface RegistryCopyOptions extends RegistryAccess {
  source: string;
  destination: string;
  additionalTags?: string[];
  jobs?: number;
  srcTlsVerify?: boolean;
  srcCreds?: Credentials;
  progress?: PushProgress;
  /** Repositories on the destination registry to mount blobs from (--mount-from). */
  mountFrom?: string[];
  /** Where blobs were copied before (mount candidates); undefined = the default location, null = none. */
  cache?: PushCache | null;
}

export async function copyRegistryImage(opts: RegistryCopyOptions): Promise<PushResult> {
  const srcRef = parseDockerDestination(opts.source, 'source');
  const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
  const src = RegistryClient.forReference(srcRef, {
    ...clientOptions({ ...opts, ...(opts.srcTlsVerify !== undefined ? { tlsVerify: opts.srcTlsVerify } : {}), creds: opts.srcCreds }),
  });
  const progress = opts.progress ?? silentProgress;
  const sameRegistry = srcRef.registry === dest.ref.registry;
  const cache = opts.cache === null ? undefined : (opts.cache ?? new PushCache());
  // another repository of the destination registry known to hold the blob: --mount-from first, then the cache
  // (the source repository, on the same registry, is tried by the upload itself)
  const mountKnown = (d: Descriptor, known: string[]) =>
    mountFromAny(dest.client, d.digest, mountCandidates(dest.ref.registry, opts.mountFrom ?? [], known, [dest.ref.repository, ...(sameRegistry ? [srcRef.repository] : [])]), opts.log);
  const limit = pLimit(opts.jobs ?? 4);
  const counts = { exists: 0, mounted: 0, uploaded: 0, bytesUploaded: 0 };
  let blobIndex = 0;
  const uploadOnce = async (d: Descriptor, i: number): Promise<BlobStatus> => {
    const start = await dest.client.startUpload(sameRegistry && srcRef.repository !== dest.ref.repository ? { mount: d.digest, from: srcRef.repository } : {});
    if (start.mounted) return 'mounted';
    progress.layerUploading(i);
    let raw: Readable | undefined;
    try {
      raw = await src.getBlob(d.digest, { size: d.size });
      const body = raw.pipe(new ProgressCounter((n) => progress.layerBytes(i, n)));
      const next = await dest.client.uploadBlobStream(start.location, body, d.size);
      await dest.client.finishUpload(next, d.digest);
    } catch (err) {
      raw?.destroy(); // pipe() does not pass the upload's failure back: free the source connection here
      await dest.client.cancelUpload(start.location).catch(() => {});
      throw err;
    }
    return 'uploaded';
  };
  const copyBlob = async (d: Descriptor, config: boolean): Promise<BlobStatus> => {
    const i = blobIndex++;
    progress.layerStart(i, d.digest.slice(7, 19), { config, size: d.size });
    const known = (await cache?.reposOf(d.digest)) ?? [];
    let status: BlobStatus = 'exists';
    let from = srcRef.repository;
    if (!(await dest.client.headBlob(d.digest))) {
      const mountedFrom = await mountKnown(d, known);
      if (mountedFrom) {
        status = 'mounted';
        from = mountedFrom;
      } else {
        // The streamed PATCH is never replayed by the transport: a failed attempt (session cancelled, source
        // download dropped) is retried whole, --retry-times bounding the attempts like the transport's retries.
        const attempts = (opts.retry?.times ?? 4) + 1;
        for (let attempt = 1; ; attempt++) {
          try {
            status = await uploadOnce(d, i);
            break;
          } catch (err) {
            if (attempt >= attempts || !(err instanceof NixregError) || err.exitCode !== ExitCode.failure) throw err;
            opts.log?.(`copy of ${d.digest} failed (${err.message}); retrying (${attempt + 1}/${attempts})`);
            await new Promise((r) => setTimeout(r, Math.min(opts.retry?.maxDelayMs ?? 30_000, (opts.retry?.baseDelayMs ?? 1000) * attempt)));
          }
        }
        if (status === 'uploaded') counts.bytesUploaded += d.size;
      }
    }
    await cache?.recordRepo(d.digest, dest.repoName, known);
    counts[status]++;
    progress.layerDone(i, status, d.digest, d.size, from);
    return status;
  };
  const copyImage = async (bytes: Buffer, mediaType: string, to: string | null, what: string) => {
    const m = parseManifest(bytes, mediaType, what);
    if (m.kind !== 'image') throw usageError('nested index in an index is not supported');
    const blobs = [m.config, ...m.layers.filter((l) => !l.urls?.length)]; // foreign layers stay where they are
    progress.begin(blobIndex + blobs.length);
    const statuses = await Promise.all(blobs.map((b, k) => limit(() => copyBlob(b, k === 0))));
    if (to) await dest.client.putManifest(to, bytes, mediaType);
    return { m, statuses };
  };
  try {
    const top = await src.getManifest(srcRef.digest ?? srcRef.tag ?? 'latest');
    const srcName = `${srcRef.registry}/${srcRef.repository}`;
    const topWhat = `manifest ${srcName}${srcRef.digest ? '@' + srcRef.digest : ':' + (srcRef.tag ?? 'latest')}`;
    const parsed = parseManifest(top.bytes, top.mediaType, topWhat);
    let config = { digest: '', size: 0, mediaType: '' };
    let layers: PushResult['layers'] = [];
    if (parsed.kind === 'index') {
      for (const child of parsed.manifests) {
        const cm = await src.getManifest(child.digest);
        await copyImage(cm.bytes, cm.mediaType, child.digest, `manifest ${srcName}@${child.digest}`);
      }
    } else {
      const { m, statuses } = await copyImage(top.bytes, top.mediaType, null, topWhat);
      config = { digest: m.config.digest, size: m.config.size, mediaType: m.config.mediaType };
      layers = m.layers.map((l, i) => ({ kind: 'base', mediaType: l.mediaType, digest: l.digest, blobSize: l.size, diffID: '', size: 0, status: statuses[i + 1] ?? 'exists' }));
    }
    const digest = await putTags(dest, top.bytes, top.mediaType);
    progress.done();
    return { name: dest.repoName, tags: dest.tags, digest, mediaType: top.mediaType, config, layers, stats: { ...counts, layersGenerated: 0 } };
  } finally {
    await src.close().catch(() => {});
    await dest.client.close().catch(() => {});
  }
}
