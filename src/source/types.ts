import type { Readable } from 'node:stream';
import type { ImageSource } from '../image/types.js';
import type { Platform } from '../manifest/manifest.js';

/**
 * Every input nixreg reads, behind one interface (go-containerregistry's "source" side): a registry reference,
 * a docker-archive (plain, gzip or zstd), an OCI image layout directory, an OCI archive (the layout as a tar),
 * and a streamLayeredImage conf. Commands (`inspect`, `export`, `merge`, `push`, format conversions) open a
 * source with `openSource(spec, opts)` from `./index.ts` and never care which kind it was.
 *
 * Spec syntax follows skopeo's transports: `docker://REF`, `docker-archive:PATH`, `oci:DIR[:REF]`,
 * `oci-archive:PATH[:REF]`, `conf:PATH`; a bare existing path is sniffed (directory with `oci-layout` → oci;
 * file starting with `{` → conf; tar/gzip/zstd with `oci-layout` member → oci-archive, else docker-archive).
 */
export type SourceKind = 'registry' | 'docker-archive' | 'oci-layout' | 'oci-archive' | 'conf';

export interface SourceIndex {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** The platforms the index offers, in index order (for `inspect`). */
  platforms: Array<{ digest: string; mediaType: string; size: number; platform?: Platform }>;
}

/**
 * One resolved single-platform image. It is an ImageSource, so `copyImage` (src/image/copy.ts) can copy it into
 * any sink; `layers[i]`/`openLayer(i)` are the layer blobs as stored (compressed or not, digest-verified), and
 * `openUncompressedLayer(i)` the layer tar itself, verified against `diffIDs[i]`.
 */
export interface SourceImage extends ImageSource {
  readonly kind: SourceKind;
  /** The image manifest's bytes where the source has one (registry, OCI); null for docker-archive and conf. */
  readonly manifestBytes: Buffer | null;
  /**
   * The manifest as `skopeo inspect --raw` shows it: `manifestBytes` where the source has one; for a
   * docker-archive the schema2 manifest c/image generates (layers by diffID, uncompressed sizes); for a conf
   * the same shape over the generated layers. `manifestDigest` is the sha256 of these bytes.
   */
  readonly describedManifest: Buffer;
  /** The index the image was chosen from, where there was one. */
  readonly index: SourceIndex | null;
  /** The config's rootfs.diff_ids, in layer order. */
  readonly diffIDs: readonly string[];
  /** Repo tags recorded in the source (docker-archive `RepoTags`, OCI `org.opencontainers.image.ref.name`). */
  readonly repoTags: readonly string[];
  /**
   * True when layers are best read one at a time, in order: a gzip/zstd-compressed archive can only be read
   * forward, so each layer opened in parallel (or out of order) inflates the archive again from its start.
   * Consumers then copy with jobs = 1.
   */
  readonly sequentialReads: boolean;
  openUncompressedLayer(index: number): Promise<Readable>;
  close(): Promise<void>;
}
