import { TarArchive } from '../nix/stream/tar-reader.js';
import { compressArchiveStream, type ArchiveCompression } from '../compression/archive.js';
import { openAtomic } from '../util/atomic-file.js';
import { closePlan, planMerge, writeMerge, type MergeResult } from './merge.js';

export { planMerge, writeMerge, closePlan, type MergePlan, type MergeResult } from './merge.js';

export interface MergeOptions {
  force?: boolean;
  /** Whole-archive compression; default: that of the last input, as dockerTools.mergeImages does. */
  compress?: ArchiveCompression;
  /** Called for each warning (duplicate tags). */
  warn?: (line: string) => void;
  /** Called with a notice: the compression taken from the last input does not match the output's name. */
  note?: (line: string) => void;
}

/** What an output name says about its compression, or undefined when it says nothing (no known suffix). */
function nameCompression(path: string): ArchiveCompression | undefined {
  if (/\.(tar\.gz|tgz|gz)$/i.test(path)) return 'gz';
  if (/\.(tar\.zst|tzst|zst|zstd)$/i.test(path)) return 'zstd';
  if (/\.tar$/i.test(path)) return 'none';
  return undefined;
}

const described: Record<ArchiveCompression, string> = { none: 'an uncompressed tar', gz: 'a gzip-compressed archive', zstd: 'a zstd-compressed archive' };

/**
 * `nixreg merge a.tar b.tar … -o all.tar`: every input is read and checked (manifest.json, configs, layer
 * members) before the output exists; the output is written atomically, so a failure leaves no file.
 */
export async function mergeImages(
  inputs: string[],
  output: string,
  opts: MergeOptions = {},
): Promise<MergeResult & { compress: ArchiveCompression; uncompressedSize: number }> {
  const plan = await planMerge(inputs);
  try {
    const compress = opts.compress ?? (await fileCompression(inputs[inputs.length - 1]!));
    for (const w of plan.warnings) opts.warn?.(w);
    const named = nameCompression(output);
    if (opts.compress === undefined && named !== undefined && named !== compress)
      opts.note?.(
        `writing ${described[compress]} to ${output} (the last input's compression, as dockerTools.mergeImages does); give --compress ${named} for what the name says`,
      );
    const out = await openAtomic(output, { force: opts.force });
    try {
      const c = compressArchiveStream(compress, out.stream, { endOut: false });
      const result = await writeMerge(plan, c.input, output);
      c.input.end();
      await c.done;
      await out.commit();
      // `size` is the file's (compressed) size; the tar inside is `uncompressedSize`
      return { ...result, uncompressedSize: result.size, size: out.stream.bytesWritten, compress };
    } catch (err) {
      await out.abort();
      throw err;
    }
  } finally {
    await closePlan(plan);
  }
}

/** mergeImages' `file --mime-type` of the last input, by magic: gzip, zstd, or a plain tar. */
async function fileCompression(path: string): Promise<ArchiveCompression> {
  const kind = await TarArchive.detectCompression(path);
  return kind === 'gzip' ? 'gz' : kind;
}
