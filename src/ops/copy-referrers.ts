import { NixregError } from '../errors.js';
import { parseManifest } from '../manifest/manifest.js';
import type { RegistryAccess } from '../registry/access.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/client.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from '../sbom/simple-signing.js';
import { openDestination, parseDockerDestination } from '../sink/registry/destination.js';
import { listReferrers, recordReferrer, type ReferrersVia } from '../sink/registry/referrers.js';
import { storedBlobContext, writeStoredBlob, type StoredBlobContext } from '../sink/registry/write.js';
import { signatureTag } from './sign.js';

export interface CopiedReferrer {
  /** the manifest it refers to (the same digest on both sides: manifests are copied verbatim) */
  subject: string;
  digest: string;
  artifactType: string;
  /** how the destination lists it: its referrers API, the `sha256-<hex>` index, or cosign's `.sig` tag */
  via: ReferrersVia | 'signature-tag';
}

export interface CopyReferrersOptions {
  /** docker://REGISTRY/REPO[:TAG|@DIGEST] of the source and the destination */
  source: string;
  destination: string;
  /** manifests already copied whose referrers follow them */
  subjects: string[];
  /** each side's access (credentials, TLS, certificates), never sent to the other */
  sourceAccess: Omit<RegistryClientOptions, 'registry' | 'repository'>;
  destinationAccess: RegistryAccess;
}

/** An index of artifacts inside an artifact is followed this deep, no deeper. */
const MAX_DEPTH = 4;

/**
 * `copy --referrers`: what refers to each copied manifest on the source (its referrers API or the `sha256-<hex>`
 * index, and cosign's `sha256-<hex>.sig` tag), copied blob for blob with its manifest verbatim, then recorded the
 * destination's own way (referrers API where it has one, else its `sha256-<hex>` index). Referrers of referrers
 * (a signature of an SBOM) follow too.
 */
export async function copyReferrers(o: CopyReferrersOptions): Promise<CopiedReferrer[]> {
  const dest = openDestination(o.destination, [], o.destinationAccess);
  const src = RegistryClient.forReference(parseDockerDestination(o.source, 'source'), o.sourceAccess);
  const sameRegistry = src.registry === dest.ref.registry;
  const ctx = storedBlobContext(dest, o.destinationAccess, sameRegistry ? { sourceRepository: src.repository } : {});
  try {
    const out: CopiedReferrer[] = [];
    const seen = new Set(o.subjects);
    const queue = [...o.subjects];
    while (queue.length) {
      const subject = queue.shift()!;
      for (const d of (await listReferrers(src, subject)).referrers) {
        const what = `${d.digest}${d.artifactType ? ` (${d.artifactType})` : ''} attached to ${subject}`;
        const via = await notCopied(what, async () => {
          await copyManifest(src, dest.client, ctx, d.digest, 0);
          return recordReferrer(dest.client, subject, d);
        });
        out.push({ subject, digest: d.digest, artifactType: d.artifactType ?? '', via });
        if (!seen.has(d.digest)) {
          seen.add(d.digest);
          queue.push(d.digest);
        }
      }
      const tag = signatureTag(subject);
      const sig = await src.headManifest(tag);
      if (sig) {
        await notCopied(`${src.repository}:${tag} (the cosign signature of ${subject})`, () => copyManifest(src, dest.client, ctx, tag, 0));
        out.push({ subject, digest: sig.digest, artifactType: SIMPLE_SIGNING_MEDIA_TYPE, via: 'signature-tag' });
      }
    }
    return out;
  } finally {
    await src.close().catch(() => {});
    await dest.client.close().catch(() => {});
  }
}

/** The manifest `ref` (digest or tag) and every blob it names, PUT under the same reference at the destination. */
async function copyManifest(src: RegistryClient, dst: RegistryClient, ctx: StoredBlobContext, ref: string, depth: number): Promise<void> {
  const m = await src.getManifest(ref);
  const what = `referrer ${src.registry}/${src.repository}@${m.digest}`;
  const p = parseManifest(m.bytes, m.mediaType, what);
  if (p.kind === 'index') {
    if (depth >= MAX_DEPTH) throw new NixregError(`${what}: indexes nested more than ${MAX_DEPTH} deep; not copied`);
    for (const child of p.manifests) await copyManifest(src, dst, ctx, child.digest, depth + 1);
  } else {
    // foreign layers (with urls) stay where they are, as in an image copy
    for (const b of [p.config, ...p.layers.filter((l) => !l.urls?.length)])
      await writeStoredBlob(ctx, { digest: b.digest, size: b.size, open: () => src.getBlob(b.digest, { size: b.size }) });
  }
  await dst.putManifest(ref, m.bytes, m.mediaType);
}

/** A referrer that fails to copy fails the copy, saying that the image itself is there. */
async function notCopied<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof NixregError)) throw e;
    throw new NixregError(
      `the image is copied, but not its referrer ${what}: ${e.message}; copy again once that is fixed, or without --referrers`,
      e.exitCode,
      {
        cause: e,
        code: e.code,
        retryable: e.retryable,
      },
    );
  }
}
