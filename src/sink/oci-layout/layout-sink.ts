import type { Descriptor } from '../../manifest/manifest.js';
import { MediaType } from '../../manifest/media-types.js';
import { isAttestation } from '../../manifest/platform.js';
import { writeAtomicFile } from '../../nix/stream/sink.js';
import type { SourceImage, SourceIndex } from '../../source/types.js';
import { descriptor, LayoutImageWriter, type LayoutImageOptions } from './image-writer.js';
import { OCI_LAYOUT_FILE, buildLayoutIndex } from './layout-index.js';
import { DirTarget, TarTarget, type LayoutTarget } from './layout-target.js';

/**
 * The OCI-layout sink: `oci:DIR[:TAG]` (a directory, created whole or added to) or `oci-archive:FILE[:TAG]` (the
 * same tree as one tar, written to an atomic file). `fill` writes the blobs through a LayoutImageWriter and returns
 * the descriptor index.json names under TAG; index.json is written last, then the output is committed. Any failure
 * aborts: a new directory or file never appears, an existing layout keeps its old index.json and loses the blobs
 * this run added.
 */
export interface LayoutDestination {
  kind: 'oci-layout' | 'oci-archive';
  path: string;
  /** `org.opencontainers.image.ref.name` of the entry (skopeo's TAG). */
  refName: string;
}

export interface LayoutSinkOptions extends Omit<LayoutImageOptions, 'serialBlobs'> {
  /** Replace an existing regular file (an existing layout directory is always added to). */
  force?: boolean;
}

export async function writeLayout(
  dest: LayoutDestination,
  opts: LayoutSinkOptions,
  fill: (writer: LayoutImageWriter) => Promise<Descriptor>,
): Promise<Descriptor> {
  if (dest.kind === 'oci-layout') return writeLayoutTarget(await DirTarget.open(dest.path, opts.force), dest.refName, opts, fill);
  return writeAtomicFile(dest.path, opts.force, (sink) =>
    writeLayoutTarget(new TarTarget(sink, dest.path), dest.refName, { ...opts, serialBlobs: true }, fill),
  );
}

/**
 * The same on a target the caller opened (a directory, or a tar on a file or stdout): `fill` writes the blobs,
 * then index.json names the descriptor it returns under `refName`, then `oci-layout`, then commit; abort on any failure.
 */
export async function writeLayoutTarget(
  target: LayoutTarget,
  refName: string,
  opts: LayoutImageOptions,
  fill: (writer: LayoutImageWriter) => Promise<Descriptor>,
): Promise<Descriptor> {
  try {
    const top = await fill(new LayoutImageWriter(target, { ...opts, serialBlobs: opts.serialBlobs || target instanceof TarTarget }));
    await target.putFile('index.json', buildLayoutIndex(top.digest, top.size, refName, top.mediaType));
    await target.putFile('oci-layout', OCI_LAYOUT_FILE);
    await target.commit();
    return top;
  } catch (err) {
    await target.abort();
    throw err;
  }
}

/** One image: its manifest is the entry. */
export const writeLayoutImage = (dest: LayoutDestination, image: SourceImage, opts: LayoutSinkOptions = {}): Promise<Descriptor> =>
  writeLayout(dest, opts, async (w) => (await w.write(image)).manifest);

/**
 * A whole index (`--all`): every platform's image, then the index. The index bytes are kept when it is an OCI
 * index whose every manifest was kept (so its digest stays); otherwise an OCI index over the manifests as written,
 * with each entry's platform and annotations, is written instead. Attestation entries (buildx's unknown/unknown
 * platform) are not images and are left out, which also means a new index.
 */
export async function writeIndexImages(
  writer: LayoutImageWriter,
  index: SourceIndex,
  openChild: (entry: Descriptor) => Promise<SourceImage>,
): Promise<Descriptor> {
  const parsed = JSON.parse(index.bytes.toString('utf8')) as { manifests: Descriptor[]; annotations?: Record<string, string> };
  const entries = parsed.manifests.filter((d) => !isAttestation(d));
  const written: Descriptor[] = [];
  for (const entry of entries) {
    const image = await openChild(entry);
    try {
      const { manifest } = await writer.write(image);
      written.push({ ...entry, mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size });
    } finally {
      await image.close().catch(() => {});
    }
  }
  const kept = index.mediaType === MediaType.ociIndex && entries.length === parsed.manifests.length && written.every((d, i) => d.digest === entries[i]!.digest);
  const bytes = kept
    ? index.bytes
    : Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociIndex,
          manifests: written.map(descriptor),
          ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
        }),
        'utf8',
      );
  const digest = await writer.putDocument(bytes);
  return { mediaType: MediaType.ociIndex, digest, size: bytes.length };
}
