import { prepareImage, type StreamImageOptions } from '../nix/stream/image.js';
import type { StreamConf } from '../nix/stream/conf.js';
import { WritableSink, seekableStdoutSink, writeAtomicFile } from '../nix/stream/sink.js';
import { DirTarget, TarTarget } from '../sink/oci-layout/layout-target.js';
import { writeOciImage, type OciImageOptions, type OciImageResult } from './write-image.js';

/**
 * OCI outputs of `nixreg stream` / `nixreg build`:
 * - writeOciDirectory(conf, dir): `--format oci`, an OCI image layout directory (atomic: temp dir + rename);
 * - writeOciArchive(conf, file | '-'): `--format oci-archive`, the same tree as one tar (atomic file, or stdout).
 * Both validate everything (prepareImage) before creating any output.
 */
export { writeOciImage, type OciImageOptions, type OciImageResult } from './write-image.js';
export { buildLayoutIndex, refNameOf, OCI_LAYOUT_FILE } from '../sink/oci-layout/layout-index.js';
export { DirTarget, TarTarget, type LayoutTarget, type BlobWriter } from '../sink/oci-layout/layout-target.js';

export type OciOutputOptions = Omit<StreamImageOptions, 'log'> & OciImageOptions & { force?: boolean };

export async function writeOciDirectory(conf: StreamConf, dir: string, opts: OciOutputOptions = {}): Promise<OciImageResult> {
  const img = await prepareImage(conf, opts);
  let target: DirTarget;
  try {
    target = await DirTarget.open(dir, opts.force);
  } catch (err) {
    await img.base?.archive.close();
    throw err;
  }
  return writeOciImage(img, target, opts);
}

export async function writeOciArchive(conf: StreamConf, output: string, opts: OciOutputOptions = {}): Promise<OciImageResult> {
  const img = await prepareImage(conf, opts);
  if (output === '-') {
    const sink = seekableStdoutSink(1) ?? new WritableSink(process.stdout, 'stdout', false);
    return writeOciImage(img, new TarTarget(sink, 'stdout'), opts);
  }
  return writeAtomicFile(
    output,
    opts.force,
    (sink) => writeOciImage(img, new TarTarget(sink, output), opts),
    () => img.base?.archive.close(),
  );
}
