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
}

/**
 * `nixreg merge a.tar b.tar … -o all.tar`: every input is read and checked (manifest.json, configs, layer
 * members) before the output exists; the output is written atomically, so a failure leaves no file.
 */
export async function mergeImages(inputs: string[], output: string, opts: MergeOptions = {}): Promise<MergeResult & { compress: ArchiveCompression }> {
  const plan = await planMerge(inputs);
  try {
    const compress = opts.compress ?? (await fileCompression(inputs[inputs.length - 1]!));
    for (const w of plan.warnings) opts.warn?.(w);
    const out = await openAtomic(output, { force: opts.force });
    try {
      const c = compressArchiveStream(compress, out.stream, { endOut: false });
      const result = await writeMerge(plan, c.input);
      c.input.end();
      await c.done;
      await out.commit();
      return { ...result, compress };
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
