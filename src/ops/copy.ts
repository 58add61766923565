import { DockerArchiveSink } from '../archive/docker-archive-sink.js';
import type { RepoTag } from '../archive/docker-archive-writer.js';
import { sha256Digest } from '../digest/sha256.js';
import { usageError } from '../errors.js';
import { copyImage } from '../image/copy.js';
import { pullImage } from '../image/pull.js';
import type { CopyProgress } from '../image/types.js';
import type { Descriptor } from '../manifest/manifest.js';
import { MediaType } from '../manifest/media-types.js';
import { normalizeTaggedName, parseImageReference } from '../reference/reference.js';
import type { RegistryAccess } from '../registry/access.js';
import { refNameOf } from '../sink/oci-layout/layout-index.js';
import { writeIndexImages, writeLayout, type LayoutDestination } from '../sink/oci-layout/layout-sink.js';
import { openSource, parseSourceSpec, rawManifest, type OpenSourceOptions, type SourceImage, type SourceIndex } from '../source/index.js';
import { openAtomic } from '../util/atomic-file.js';
// The registry writer (docker:// destinations).
import { copyRegistryImage } from '../sink/registry/registry-copy.js';
import { pushSource } from '../sink/registry/source-push.js';
import { checkSourceTransport, parseCopyDestination, type CopyDestination } from './copy-spec.js';
import { copyReferrers, type CopiedReferrer } from './copy-referrers.js';

type PushProgress = NonNullable<Parameters<typeof copyRegistryImage>[0]['progress']>;

/**
 * `nixreg copy SRC DST`: any source openSource reads into any destination skopeo names, one platform (chosen as
 * pull chooses it) or, with `all`, a whole index. Each pair is one source → one sink:
 * - into `docker-archive:` the docker-archive sink `nixreg pull` writes (a registry source goes through pull
 *   itself, so the bytes are pull's);
 * - into `oci:`/`oci-archive:` the OCI-layout sink, keeping manifest, config and layer digests where the formats
 *   allow (see sink/oci-layout/image-writer.ts);
 * - into `docker://` the registry writer: a registry source is copied blob for blob with its manifests verbatim,
 *   any other is pushed as `nixreg push` pushes it.
 */
export interface CopyCommandOptions {
  source: string;
  destination: string;
  /** The platform to pick from an index and the source registry's access (never sent to the destination). */
  sourceOptions: OpenSourceOptions;
  /** The destination registry's access (never sent to the source). */
  destinationAccess?: RegistryAccess;
  /** Copy every platform of an index, and the index. */
  all?: boolean;
  jobs?: number;
  /** Replace an existing output file. */
  force?: boolean;
  progress?: CopyProgress;
  /** Progress of a docker:// destination. */
  pushProgress?: PushProgress;
  /** Registry to registry: bring along the referrers (SBOMs, provenance, signatures) of every copied manifest. */
  referrers?: boolean;
}

export interface CopyCommandResult {
  destination: string;
  /** What the destination names: the manifest digest, or the index digest with `all`. */
  digest: string;
  mediaType: string;
  /** With `referrers`: what was brought along, each with the manifest it refers to. */
  referrers?: CopiedReferrer[];
}

export async function copy(o: CopyCommandOptions): Promise<CopyCommandResult> {
  const dest = parseCopyDestination(o.destination);
  await checkSourceTransport(o.source);
  if (o.referrers && (dest.kind !== 'registry' || !isRegistry(o.source)))
    throw usageError('--referrers copies from a registry into a registry (docker://SRC docker://DST): only there are artifacts attached to a manifest');
  switch (dest.kind) {
    case 'registry':
      return copyToRegistry(o, dest.ref);
    case 'docker-archive':
      if (o.all)
        throw usageError('a docker-archive holds one image: --all cannot copy an index into it; pick a platform (--os/--arch/--variant) or copy into oci:DIR');
      return copyToDockerArchive(o, dest);
    default:
      return copyToLayout(o, dest);
  }
}

const isRegistry = (spec: string) => spec.startsWith('docker://');

async function copyToDockerArchive(o: CopyCommandOptions, dest: Extract<CopyDestination, { kind: 'docker-archive' }>): Promise<CopyCommandResult> {
  const named = dest.ref !== undefined ? normalizeTaggedName(dest.ref) : undefined;
  if (isRegistry(o.source)) {
    // pull's own defaults for the archive's name (the reference's name and tag), so the bytes are `nixreg pull`'s
    const { platform, storeRoot: _s, cache: _c, repoTag: _r, ...access } = o.sourceOptions;
    const r = await pullImage({
      ...access,
      imageName: o.source,
      output: dest.path,
      platform,
      ...(named ? { finalImageName: named.name, finalImageTag: named.tag } : { finalImageTag: parseImageReference(o.source).tag ?? 'latest' }),
      force: o.force,
      jobs: o.jobs,
      progress: o.progress,
      hashArchive: false,
    });
    return { destination: o.destination, digest: r.manifestDigest, mediaType: r.source.manifestMediaType };
  }
  const src = await openSource(o.source, o.sourceOptions);
  try {
    const repoTags: RepoTag[] = named ? [named] : src.kind === 'docker-archive' || src.kind === 'conf' ? src.repoTags.slice(0, 1).map(normalizeTaggedName) : [];
    const file = await openAtomic(dest.path, { force: o.force });
    try {
      await copyImage(src, new DockerArchiveSink(file.stream, repoTags, false), { jobs: src.sequentialReads ? 1 : o.jobs, progress: o.progress });
      await file.commit();
    } catch (err) {
      await file.abort();
      throw err;
    }
    return { destination: o.destination, digest: src.manifestDigest, mediaType: src.manifestMediaType };
  } finally {
    await src.close().catch(() => {});
  }
}

/** The tag an `oci:DIR` entry gets when DST names none: the source's tag, else `latest`. */
function defaultRefName(spec: string, image?: SourceImage): string {
  if (isRegistry(spec)) return parseImageReference(spec).tag ?? 'latest';
  const tag = image?.repoTags[0];
  if (!tag) return 'latest';
  return image.kind === 'oci-layout' || image.kind === 'oci-archive' ? tag : refNameOf(tag);
}

async function copyToLayout(o: CopyCommandOptions, dest: Extract<CopyDestination, { kind: 'oci-layout' | 'oci-archive' }>): Promise<CopyCommandResult> {
  const sinkOpts = { force: o.force, jobs: o.jobs, progress: o.progress };
  const index = o.all ? await sourceIndex(o) : undefined;
  if (index) {
    const layout: LayoutDestination = { kind: dest.kind, path: dest.path, refName: dest.ref ?? defaultRefName(o.source) };
    const top = await writeLayout(layout, sinkOpts, (w) => writeIndexImages(w, index, (entry) => openChild(o, entry)));
    return { destination: o.destination, digest: top.digest, mediaType: top.mediaType };
  }
  const src = await openSource(o.source, o.sourceOptions);
  try {
    const layout: LayoutDestination = { kind: dest.kind, path: dest.path, refName: dest.ref ?? defaultRefName(o.source, src) };
    const top = await writeLayout(layout, sinkOpts, async (w) => (await w.write(src)).manifest);
    return { destination: o.destination, digest: top.digest, mediaType: top.mediaType };
  } finally {
    await src.close().catch(() => {});
  }
}

/** The index SRC names, without choosing a platform; undefined when it names a single image. */
async function sourceIndex(o: CopyCommandOptions): Promise<SourceIndex | undefined> {
  const bytes = await rawManifest(o.source, o.sourceOptions);
  let doc: { mediaType?: unknown; manifests?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    return undefined; // not JSON: openSource reports it with the source's own words
  }
  if (!Array.isArray(doc?.manifests)) return undefined;
  return { digest: sha256Digest(bytes), mediaType: typeof doc.mediaType === 'string' ? doc.mediaType : MediaType.ociIndex, bytes, platforms: [] };
}

/** One entry of the source's index as an image: by digest in a registry; by its platform in a layout, checked to be that entry. */
async function openChild(o: CopyCommandOptions, entry: Descriptor): Promise<SourceImage> {
  if (isRegistry(o.source)) {
    const ref = parseImageReference(o.source);
    return openSource(`docker://${ref.registry}/${ref.repository}@${entry.digest}`, o.sourceOptions);
  }
  const p = entry.platform;
  const image = await openSource(o.source, {
    ...o.sourceOptions,
    platform: { os: p?.os ?? '', arch: p?.architecture ?? '', ...(p?.variant ? { variant: p.variant } : {}) },
  });
  if (image.manifestDigest !== entry.digest) {
    await image.close().catch(() => {});
    throw usageError(
      `${o.source}: cannot tell index entry ${entry.digest} apart by its platform (another entry has the same one); copy it by platform without --all`,
    );
  }
  return image;
}

async function copyToRegistry(o: CopyCommandOptions, destination: string): Promise<CopyCommandResult> {
  const access = o.destinationAccess ?? {};
  if (isRegistry(o.source)) {
    const { platform: _p, storeRoot: _s, cache: _c, repoTag: _r, ...src } = o.sourceOptions;
    let source = o.source;
    if (!o.all) {
      // one platform: the copy is of that platform's manifest, tagged at the destination
      const image = await openSource(o.source, o.sourceOptions);
      await image.close().catch(() => {});
      if (image.indexDigest) {
        const ref = parseImageReference(o.source);
        source = `docker://${ref.registry}/${ref.repository}@${image.manifestDigest}`;
      }
    }
    const r = await copyRegistryImage({
      ...access,
      source,
      destination,
      jobs: o.jobs,
      sourceAccess: src,
      ...(o.pushProgress ? { progress: o.pushProgress } : {}),
    });
    const result: CopyCommandResult = { destination: o.destination, digest: r.digest, mediaType: r.mediaType };
    if (!o.referrers) return result;
    const subjects = [r.digest, ...(await indexChildren(source, o.sourceOptions, r.digest))];
    const referrers = await copyReferrers({ source, destination, subjects, sourceAccess: src, destinationAccess: access });
    return { ...result, referrers };
  }
  if (o.all)
    throw usageError('--all into docker:// copies a registry index; for an OCI layout or archive, push one platform at a time (--os/--arch/--variant)');
  await parseSourceSpec(o.source); // a missing file fails here, before the destination is contacted
  const r = await pushSource({
    ...access,
    source: o.source,
    sourceOptions: o.sourceOptions,
    destination,
    jobs: o.jobs,
    ...(o.pushProgress ? { progress: o.pushProgress } : {}),
  });
  return { destination: o.destination, digest: r.digest, mediaType: r.mediaType };
}

/** The manifests an index names (none for an image manifest), read from the source as copied. */
async function indexChildren(source: string, access: OpenSourceOptions, digest: string): Promise<string[]> {
  const ref = parseImageReference(source);
  const bytes = await rawManifest(`docker://${ref.registry}/${ref.repository}@${digest}`, access);
  const doc = JSON.parse(bytes.toString('utf8')) as { manifests?: Array<{ digest?: unknown }> };
  return Array.isArray(doc.manifests) ? doc.manifests.map((m) => m.digest).filter((d): d is string => typeof d === 'string') : [];
}
