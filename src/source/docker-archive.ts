import { decompressByMagic, detectCompression } from '../compression/decompress.js';
import { usageError, notFoundError } from '../errors.js';
import type { Descriptor } from '../manifest/manifest.js';
import { normalizeTaggedName } from '../reference/reference.js';
import type { TarMember } from '../nix/stream/tar-reader.js';
import { ArchiveMembers, cleanName } from './archive-members.js';
import { assembleSource, GENERATED_LAYER_TYPE, withGeneratedManifest } from './image.js';
import { parseJson, verifyStream } from './verify.js';
import type { SourceImage } from './types.js';

/** One entry of a docker-archive's manifest.json (docker save, skopeo, stream_layered_image.py). */
export interface DockerArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const SMALL_JSON = 16 << 20;

export const keepArchiveJson = (m: TarMember): boolean => m.size <= SMALL_JSON && (m.name.endsWith('.json') || cleanName(m.name) === 'repositories');

/** manifest.json, checked for shape (one-line errors naming the archive). */
export async function readArchiveManifest(a: ArchiveMembers): Promise<DockerArchiveEntry[]> {
  const list = parseJson<unknown>(await a.read(a.need('manifest.json', 'member'), 'manifest.json'), `${a.label}: manifest.json`);
  if (!Array.isArray(list)) throw usageError(`${a.label} is not a valid image: manifest.json is not a list`);
  list.forEach((e: Partial<DockerArchiveEntry>, i) => {
    if (!e || typeof e.Config !== 'string' || !Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string'))
      throw usageError(`${a.label} is not a valid image: manifest.json entry ${i} lacks Config/Layers`);
    if (e.RepoTags != null && (!Array.isArray(e.RepoTags) || e.RepoTags.some((t) => typeof t !== 'string')))
      throw usageError(`${a.label} is not a valid image: manifest.json entry ${i} has invalid RepoTags`);
  });
  return list as DockerArchiveEntry[];
}

/** Normalised `name:tag` like c/image compares them (`img` = `docker.io/library/img:latest`). */
export function normalTag(t: string): string | undefined {
  try {
    const n = normalizeTaggedName(t);
    return `${n.name}:${n.tag}`;
  } catch {
    return undefined;
  }
}

/**
 * Pick the image like c/image's docker-archive source: by `NAME[:TAG]` (matched after normalisation) or `@N`
 * (the N-th manifest.json entry); with no reference the archive must hold exactly one image.
 */
export function chooseEntry(entries: DockerArchiveEntry[], ref: string | undefined, label: string): DockerArchiveEntry {
  if (ref === undefined || ref === '') {
    if (entries.length === 1) return entries[0]!;
    if (entries.length === 0) throw usageError(`${label} holds no image (manifest.json is empty)`);
    const tags = entries.flatMap((e) => e.RepoTags ?? []);
    throw usageError(`${label} holds ${entries.length} images; name one as docker-archive:PATH:NAME:TAG or :@N (tags: ${tags.join(', ') || 'none'})`);
  }
  if (ref.startsWith('@')) {
    const n = Number(ref.slice(1));
    if (!Number.isInteger(n) || n < 0 || n >= entries.length) throw notFoundError(`${label} has no image ${ref} (it holds ${entries.length})`);
    return entries[n]!;
  }
  const want = normalTag(ref);
  if (!want) throw usageError(`${label}: "${ref}" is not a valid NAME:TAG`);
  const hit = entries.find((e) => (e.RepoTags ?? []).some((t) => normalTag(t) === want));
  if (!hit) throw notFoundError(`${label} has no image tagged ${want} (tags: ${entries.flatMap((e) => e.RepoTags ?? []).join(', ') || 'none'})`);
  return hit;
}

/**
 * `docker-archive:PATH[:NAME:TAG|:@N]`. As in c/image, layers are presented by diffID with their uncompressed
 * size (a member stored compressed is decompressed on read), so the generated manifest and its digest are
 * the ones `skopeo inspect docker-archive:…` shows.
 */
export async function openDockerArchive(path: string, ref: string | undefined, opened?: ArchiveMembers): Promise<SourceImage> {
  const label = `docker-archive ${path}`;
  const a = opened ? opened.withLabel(label) : await ArchiveMembers.open(path, label, keepArchiveJson);
  try {
    const entry = chooseEntry(await readArchiveManifest(a), ref, label);
    const configBytes = await a.read(a.need(entry.Config, 'config'), 'config');
    const diffIDs = parseJson<{ rootfs?: { diff_ids?: unknown } }>(configBytes, `${label}: config`)?.rootfs?.diff_ids;
    if (!Array.isArray(diffIDs) || diffIDs.length !== entry.Layers.length)
      throw usageError(`${label} is not a consistent image: ${entry.Layers.length} layers but ${Array.isArray(diffIDs) ? diffIDs.length : 'no'} diff_ids`);
    const members = entry.Layers.map((l) => a.need(l, 'layer'));
    const layers: Descriptor[] = [];
    for (let i = 0; i < members.length; i++) {
      layers.push({ mediaType: GENERATED_LAYER_TYPE, digest: String(diffIDs[i]), size: await uncompressedSize(a, members[i]!) });
    }
    return assembleSource({
      kind: 'docker-archive',
      description: ref ? `${label}:${ref}` : label,
      ...withGeneratedManifest(configBytes, layers),
      repoTags: entry.RepoTags ?? [],
      sequentialReads: a.archive.gzip, // true for any compressed outer archive
      // decompressByMagic passes a plain tar through untouched; digest (and size, where it was measured: see
      // uncompressedSize) are then checked against the diffID.
      rawIsVerified: true,
      openRawLayer: async (i) =>
        verifyStream(
          decompressByMagic(a.stream(members[i]!)),
          `${label} layer ${entry.Layers[i]}`,
          layers[i]!.digest,
          a.archive.gzip ? undefined : layers[i]!.size,
        ),
      close: () => a.close(),
    });
  } catch (err) {
    await a.close();
    throw err;
  }
}

/**
 * Layers are normally stored as plain tars (member size = layer size). A member stored gzip/zstd-compressed
 * is measured by decompressing it once, as c/image does. Only plain outer archives are sniffed: in a
 * compressed archive each look would restart decompression, and no tool writes compressed layers inside one.
 */
async function uncompressedSize(a: ArchiveMembers, m: TarMember): Promise<number> {
  if (a.archive.gzip || m.size < 512) return m.size;
  const head = await firstBytes(a, m, 512);
  let kind;
  try {
    kind = detectCompression(head);
  } catch {
    return m.size; // not a tar either: the diffID check on read reports it
  }
  if (kind === 'none') return m.size;
  let n = 0;
  for await (const c of decompressByMagic(a.stream(m))) n += (c as Buffer).length;
  return n;
}

async function firstBytes(a: ArchiveMembers, m: TarMember, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  const s = a.stream(m);
  for await (const c of s) {
    parts.push(c as Buffer);
    got += (c as Buffer).length;
    if (got >= n) break;
  }
  s.destroy();
  return Buffer.concat(parts).subarray(0, n);
}
