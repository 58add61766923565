import type { Readable } from 'node:stream';
import type { Descriptor } from '../manifest/manifest.js';
import type { ArchiveLayer } from '../archive/docker-archive-writer.js';

/**
 * Sources → one copy pipeline → sinks. A source is one resolved single-platform image (a registry today;
 * an archive or a Nix build later); a sink consumes config + uncompressed layers in manifest order
 * (docker-archive today; a hashing sink for prefetch and a registry for push later).
 */
export interface ImageSource {
  /** Human-readable origin for messages, e.g. `127.0.0.1:5000/test/img@sha256:…`. */
  readonly description: string;
  /** Digest of the manifest list / index the image was selected from, if any. */
  readonly indexDigest: string | null;
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  readonly config: Descriptor;
  readonly configBytes: Buffer; // verified against config.digest
  readonly layers: readonly Descriptor[];
  /** The layer's stored (usually compressed) bytes, verified against its digest while streaming. */
  openLayer(index: number): Promise<Readable>;
  /** The last `n` stored bytes of a layer, unverified (a gzip trailer's size hint), where the source can give them cheaply. */
  layerTail?(index: number, n: number): Promise<Buffer | undefined>;
}

export interface SinkImage {
  configBytes: Buffer;
  configDigest: string;
  /** Uncompressed digests in manifest order, repeats included. */
  diffIDs: readonly string[];
  /** Distinct layers in order of first appearance; each arrives once its uncompressed size is known. */
  layers: AsyncIterable<ArchiveLayer>;
}

export interface ImageSink<R> {
  write(image: SinkImage): Promise<R>;
}

/** Progress events of a copy; all optional. Indexes are manifest layer indexes. */
export interface CopyProgress {
  /** The manifest's layers, before any other event (repeats are reported by layerSkipped after it). */
  begin?(layers: readonly Descriptor[]): void;
  layerStart?(index: number, desc: Descriptor): void;
  layerBytes?(index: number, compressedBytes: number): void;
  layerSpooled?(index: number, uncompressedSize: number): void;
  layerWritten?(index: number): void;
  layerSkipped?(index: number, sameAs: number): void;
}
