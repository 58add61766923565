import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { hexOf, sha256Digest, checkDigest } from '../digest/sha256.js';
import { NixregError, describeSystemError, notFoundError, usageError } from '../errors.js';
import { parseManifest, type Descriptor, type ImageManifest } from '../manifest/manifest.js';
import { selectPlatform, type WantedPlatform } from '../manifest/platform.js';
import type { TarMember } from '../nix/stream/tar-reader.js';
import { ArchiveMembers } from './archive-members.js';
import { assembleSource } from './image.js';
import { indexInfo } from './registry.js';
import { parseJson, readSmall } from './verify.js';
import type { SourceImage, SourceIndex, SourceKind } from './types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_DOC = 64 << 20;

/** Where an OCI image layout's blobs live: a directory, or the members of a tar of one. */
interface LayoutStore {
  label: string;
  kind: SourceKind;
  sequentialReads: boolean;
  indexJson(): Promise<Buffer>;
  /** Raw blob bytes; the caller verifies them. */
  open(digest: string): Promise<Readable>;
  close(): Promise<void>;
}

const blobPath = (digest: string) => `blobs/${digest.slice(0, digest.indexOf(':'))}/${hexOf(digest)}`;

function dirStore(dir: string): LayoutStore {
  const label = `oci ${dir}`;
  return {
    label,
    kind: 'oci-layout',
    sequentialReads: false,
    indexJson: async () => {
      const layout = await readFile(join(dir, 'oci-layout'), 'utf8').catch(async (err: NodeJS.ErrnoException) => {
        if (
          err.code === 'ENOENT' &&
          !(await stat(dir).then(
            () => true,
            () => false,
          ))
        )
          throw usageError(`${label} does not exist`);
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw usageError(`${label} is not an OCI image layout (no oci-layout file)`);
        throw usageError(`${label}: cannot read its oci-layout file (${describeSystemError(err)})`);
      });
      checkLayoutVersion(layout, label);
      return readFile(join(dir, 'index.json')).catch((err) => {
        throw usageError(`${label} is not an OCI image layout (index.json: ${describeSystemError(err)})`);
      });
    },
    open: async (digest) => {
      const file = join(dir, blobPath(digest));
      await stat(file).catch(() => {
        throw notFoundError(`${label} has no blob ${digest}`);
      });
      const s = createReadStream(file, { highWaterMark: 1 << 20 });
      s.on('error', (err) => s.destroy(new NixregError(`cannot read ${file}: ${describeSystemError(err)}`)));
      return s;
    },
    close: async () => {},
  };
}

/** Keep only the two layout files in memory; manifests/configs are read on demand, layers streamed in place. */
export const keepLayoutFiles = (m: TarMember): boolean => m.size <= MAX_DOC && (m.name === 'index.json' || m.name === 'oci-layout');

async function archiveStore(path: string, opened?: ArchiveMembers): Promise<LayoutStore> {
  const label = `oci-archive ${path}`;
  const a = opened ? opened.withLabel(label) : await ArchiveMembers.open(path, label, keepLayoutFiles);
  return {
    label,
    kind: 'oci-archive',
    sequentialReads: a.archive.gzip,
    indexJson: async () => {
      const layout = a.resolve('oci-layout');
      if (!layout) throw usageError(`${label} is not an OCI archive (no oci-layout member)`);
      checkLayoutVersion((await a.read(layout, 'oci-layout')).toString('utf8'), label);
      return a.read(a.need('index.json', 'member'), 'index.json');
    },
    open: async (digest) => {
      const m = a.resolve(blobPath(digest));
      if (!m) throw notFoundError(`${label} has no blob ${digest}`);
      return a.stream(m);
    },
    close: () => a.close(),
  };
}

function checkLayoutVersion(text: string, label: string): void {
  const v = parseJson<{ imageLayoutVersion?: unknown }>(Buffer.from(text), `${label}: oci-layout`)?.imageLayoutVersion;
  if (v !== '1.0.0') throw usageError(`${label}: unsupported imageLayoutVersion ${JSON.stringify(v)}`);
}

export const openOciLayout = (dir: string, ref: string | undefined, platform: WantedPlatform): Promise<SourceImage> => openLayout(dirStore(dir), ref, platform);

export async function openOciArchive(path: string, ref: string | undefined, platform: WantedPlatform, opened?: ArchiveMembers): Promise<SourceImage> {
  return openLayout(await archiveStore(path, opened), ref, platform);
}

async function readDoc(store: LayoutStore, d: Descriptor, what: string): Promise<Buffer> {
  if (d.size > MAX_DOC) throw new NixregError(`${store.label}: ${what} ${d.digest} is ${d.size} bytes; refusing to buffer it`);
  const bytes = await readSmall(await store.open(d.digest), `${store.label}: ${what}`, MAX_DOC);
  checkDigest(`${store.label}: ${what}`, d.digest, sha256Digest(bytes), d.size, bytes.length);
  return bytes;
}

/**
 * The index.json entry as c/image's oci transport picks it: `:REF` matches the `org.opencontainers.image.ref.name`
 * annotation (or `:@N`, the N-th entry); without one, index.json must list exactly one manifest. Returns the
 * entry's manifest bytes (an image manifest or an index), verified against the entry.
 */
async function layoutEntry(store: LayoutStore, ref: string | undefined) {
  const top = parseManifestAs(await store.indexJson(), 'application/vnd.oci.image.index.v1+json', `${store.label}: index.json`);
  if (top.kind !== 'index') throw usageError(`${store.label}: index.json is not an image index`);
  const refs = top.manifests.map((d) => d.annotations?.[REF_NAME]).filter((r): r is string => !!r);
  let entry: Descriptor | undefined;
  if (ref === undefined || ref === '') {
    if (top.manifests.length !== 1)
      throw usageError(
        `${store.label} holds ${top.manifests.length} images; name one as ${store.kind === 'oci-layout' ? 'oci' : 'oci-archive'}:PATH:REF (refs: ${refs.join(', ') || 'none'})`,
      );
    entry = top.manifests[0];
  } else if (/^@\d+$/.test(ref)) {
    entry = top.manifests[Number(ref.slice(1))];
    if (!entry) throw notFoundError(`${store.label} has no image ${ref} (it holds ${top.manifests.length})`);
  } else {
    entry = top.manifests.find((d) => d.annotations?.[REF_NAME] === ref);
    if (!entry) throw notFoundError(`${store.label} has no image named ${ref} (refs: ${refs.join(', ') || 'none'})`);
  }
  const bytes = await readDoc(store, entry!, 'manifest');
  return { entry: entry!, bytes, parsed: parseManifestAs(bytes, entry!.mediaType, `${store.label}: manifest ${entry!.digest}`) };
}

/** `inspect --raw`: the bytes the reference names (an index stays an index; no platform is chosen). */
export async function layoutRawManifest(kind: 'oci-layout' | 'oci-archive', path: string, ref: string | undefined): Promise<Buffer> {
  const store = kind === 'oci-layout' ? dirStore(path) : await archiveStore(path);
  try {
    return (await layoutEntry(store, ref)).bytes;
  } finally {
    await store.close();
  }
}

/** An entry that is itself an index is resolved for the wanted platform. */
async function openLayout(store: LayoutStore, ref: string | undefined, platform: WantedPlatform): Promise<SourceImage> {
  try {
    const first = await layoutEntry(store, ref);
    const entry = first.entry;
    let chosen: Descriptor = entry;
    let bytes = first.bytes;
    let parsed = first.parsed;
    let index: SourceIndex | null = null;
    if (parsed.kind === 'index') {
      index = indexInfo(chosen.digest, bytes, parsed);
      chosen = selectPlatform(parsed, platform);
      bytes = await readDoc(store, chosen, 'manifest');
      parsed = parseManifestAs(bytes, chosen.mediaType, `${store.label}: manifest ${chosen.digest}`);
      if (parsed.kind !== 'image') throw new NixregError(`${store.label}: an index inside an index is not supported`);
    }
    const manifest: ImageManifest = parsed;
    const description = `${store.label}${ref ? `:${ref}` : ''}`;
    const configBytes = await readDoc(store, manifest.config, 'config');
    const name = entry.annotations?.[REF_NAME];
    return assembleSource({
      kind: store.kind,
      description,
      index,
      manifestDigest: chosen.digest,
      manifestMediaType: manifest.mediaType,
      manifestBytes: bytes,
      describedManifest: bytes,
      config: manifest.config,
      configBytes,
      layers: manifest.layers,
      repoTags: name ? [name] : [],
      sequentialReads: store.sequentialReads,
      openRawLayer: (i) => store.open(manifest.layers[i]!.digest),
      close: () => store.close(),
    });
  } catch (err) {
    await store.close();
    throw err;
  }
}

function parseManifestAs(bytes: Buffer, mediaType: string, what: string) {
  try {
    return parseManifest(bytes, mediaType);
  } catch (err) {
    // `what` already names the document ("oci DIR: manifest sha256:..."), so the message reads "what: invalid manifest: why"
    if (err instanceof NixregError) throw new NixregError(`${what}: ${err.message}`, err.exitCode);
    throw err;
  }
}
