import type { Writable } from 'node:stream';
import type { StreamConf } from './conf.js';
import { writeImage, type StreamResult } from '../../sink/nixpkgs-archive/stream-image.js';
import { prepareImage, type StreamImageOptions } from './image.js';
import { WritableSink, seekableStdoutSink, writeAtomicFile } from './sink.js';
import { checkOutputOptions, writeStreamOutput, type StreamOutputOptions, type StreamOutputResult } from './output.js';

/**
 * Public API of `nixreg stream` (also used by `nixreg build` and `nixreg push`):
 *
 * - loadStreamConf(file) / parseStreamConf(text): the conf, validated (usage errors name the key).
 * - streamImageToFile(conf, target, opts) / streamImageToWritable(conf, writable, opts): the whole image,
 *   byte-identical to `stream_layered_image.py conf.json`.
 * - writeImageOutput(conf, output, opts): what `nixreg stream`/`build` call: docker-archive (optionally --compress
 *   gz|zstd as a whole) or an OCI layout directory / oci-archive (--format oci|oci-archive, src/oci/).
 * - prepareImage(conf, opts) → { layers: ImageLayer[] }: every layer with its exact size, known diffIDs and
 *   `open()` → Readable of the uncompressed bytes; buildImageConfig / buildManifest for the JSON members.
 * - planStoreLayer(paths, owner) / generateStoreLayer(plan) / layerSize(paths, owner) / storeLayerDigest(plan):
 *   single store layers.
 */
export { loadStreamConf, parseStreamConf, type StreamConf } from './conf.js';
export { writeImage, type StreamResult } from '../../sink/nixpkgs-archive/stream-image.js';
export {
  prepareImage,
  resolveLayerDigests,
  DEFAULT_CUSTOMISATION_OWNER,
  type PreparedImage,
  type ImageLayer,
  type LayerKind,
  type StreamImageOptions,
  type CustomisationOwner,
} from './image.js';
export { buildImageConfig, buildManifest, layerMemberName, type ImageConfigParts, type ImageManifestParts } from './image-json.js';
export {
  planStoreLayer,
  fingerprintStoreLayer,
  generateStoreLayer,
  storeLayerChunks,
  layerSize,
  storeLayerDigest,
  storeLayerCacheKey,
  TAR_RULES_VERSION,
  type StoreLayerPlan,
  type StoreLayerOptions,
  type LayerOwner,
  type LayerPassStats,
} from './store-layer.js';
export { FileSink, WritableSink, seekableStdoutSink, writeAtomicFile, type ByteSink } from './sink.js';
export { LayerCache } from '../layer-cache.js';
export {
  checkOutputOptions,
  streamCompressedArchive,
  OUTPUT_FORMATS,
  type OutputFormat,
  type StreamOutputOptions,
  type StreamOutputResult,
} from './output.js';

/**
 * The one entry point for `nixreg stream` and `nixreg build`: docker-archive (plain: streamImageToFile /
 * streamImageToStdout; --compress gz|zstd: whole-file compressor), or an OCI layout (--format oci|oci-archive).
 * `output`: a path, or '-' / undefined for stdout.
 */
export async function writeImageOutput(conf: StreamConf, output: string | undefined, o: StreamOutputOptions = {}): Promise<StreamOutputResult> {
  checkOutputOptions(output, o);
  if ((o.format ?? 'docker-archive') === 'docker-archive' && (o.compress ?? 'none') === 'none') {
    const r = output && output !== '-' ? await streamImageToFile(conf, output, o) : await streamImageToStdout(conf, o);
    return { format: 'docker-archive', ...r };
  }
  return writeStreamOutput(conf, output, o);
}

/** Stream the image into `target` atomically (temp file + rename); layers are written once and back-patched. */
export async function streamImageToFile(conf: StreamConf, target: string, opts: StreamImageOptions & { force?: boolean } = {}): Promise<StreamResult> {
  const img = await prepareImage(conf, opts); // all validation before the output file exists
  return writeAtomicFile(
    target,
    opts.force,
    (sink) => writeImage(img, sink, opts),
    () => img.base?.archive.close(),
  );
}

/** Stream the image into a Writable (stdout, a pipe). Not seekable: uncached store layers are hashed first. */
export async function streamImageToWritable(
  conf: StreamConf,
  stream: Writable,
  opts: StreamImageOptions & { label?: string; end?: boolean } = {},
): Promise<StreamResult> {
  const img = await prepareImage(conf, opts);
  return writeImage(img, new WritableSink(stream, opts.label ?? 'output', opts.end ?? false), opts);
}

/**
 * Stream the image to this process's stdout. When stdout is a regular file (`> image.tar`) layers are written
 * once and their headers patched, as with -o; on a pipe it behaves like streamImageToWritable.
 */
export async function streamImageToStdout(conf: StreamConf, opts: StreamImageOptions = {}): Promise<StreamResult> {
  const img = await prepareImage(conf, opts);
  const sink = seekableStdoutSink(1) ?? new WritableSink(process.stdout, 'stdout', false);
  return writeImage(img, sink, opts);
}
