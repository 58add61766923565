import pLimit from 'p-limit';
import { usageError } from '../../errors.js';
import { parseManifest, type Descriptor } from '../../manifest/manifest.js';
import { RegistryClient } from '../../registry/client.js';
import type { Credentials } from '../../registry/types.js';
import { countedStream, type BlobStatus } from './blob-upload.js';
import { clientOptions, type RegistryAccess } from '../../registry/access.js';
import { openDestination, parseDockerDestination, putTags } from './destination.js';
import type { PushResult } from './push-conf.js';
import { silentProgress, type PushProgress } from './progress.js';
import { PushCache } from './push-cache.js';
import { storedBlobContext, writeStoredBlob } from './write.js';

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
  /** The source registry's own access (auth file, cert dir, TLS, creds); when given, the destination's is not used for the source. */
  sourceAccess?: RegistryAccess;
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
    ...clientOptions(opts.sourceAccess ?? { ...opts, ...(opts.srcTlsVerify !== undefined ? { tlsVerify: opts.srcTlsVerify } : {}), creds: opts.srcCreds }),
  });
  const progress = opts.progress ?? silentProgress;
  const sameRegistry = srcRef.registry === dest.ref.registry;
  const cache = opts.cache === null ? undefined : (opts.cache ?? new PushCache());
  // mounts: --mount-from, then where the cache saw the blob, then (in the upload's own POST) the source repository
  const ctx = storedBlobContext(dest, opts, {
    mountFrom: opts.mountFrom ?? [],
    ...(cache ? { cache } : {}),
    ...(sameRegistry ? { sourceRepository: srcRef.repository } : {}),
  });
  const limit = pLimit(opts.jobs ?? 4);
  const counts = { exists: 0, mounted: 0, uploaded: 0, bytesUploaded: 0 };
  let blobIndex = 0;
  const copyBlob = async (d: Descriptor, config: boolean): Promise<BlobStatus> => {
    const i = blobIndex++;
    progress.layerStart(i, d.digest.slice(7, 19), { config, size: d.size });
    // the source stream is verified on the way (size and digest): a damaged download fails the attempt
    const open = async () => countedStream(await src.getBlob(d.digest, { size: d.size }), (n) => progress.layerBytes(i, n));
    const r = await writeStoredBlob(ctx, { digest: d.digest, size: d.size, open }, { uploading: () => progress.layerUploading(i) });
    if (r.status === 'uploaded') counts.bytesUploaded += d.size;
    counts[r.status]++;
    progress.layerDone(i, r.status, d.digest, d.size, r.from ?? srcRef.repository);
    return r.status;
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
      layers = m.layers.map((l, i) => ({
        kind: 'base',
        mediaType: l.mediaType,
        digest: l.digest,
        blobSize: l.size,
        diffID: '',
        size: 0,
        status: statuses[i + 1] ?? 'exists',
      }));
    }
    const digest = await putTags(dest, top.bytes, top.mediaType);
    progress.done();
    return { name: dest.repoName, tags: dest.tags, digest, mediaType: top.mediaType, config, layers, stats: { ...counts, layersGenerated: 0 } };
  } finally {
    await src.close().catch(() => {});
    await dest.client.close().catch(() => {});
  }
}
