import type { Argv, CommandModule } from 'yargs';
import { ARCHIVE_COMPRESSIONS, parseArchiveCompression } from '../../compression/archive.js';

interface Args {
  inputs: string[];
  output: string;
  force?: boolean;
  json?: boolean;
  compress?: string;
}

/** `nixreg merge`: dockerTools.mergeImages — one docker-archive holding every input image. */
export const command: CommandModule<object, Args> = {
  command: 'merge <inputs..>',
  describe: 'combine docker-archives (plain or gzip) into one, like dockerTools.mergeImages; shared layers stored once',
  builder: (y) =>
    y
      .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'docker-archive files (docker save, skopeo, nixreg pull/stream)' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output docker-archive (written atomically)' })
      .option('compress', {
        type: 'string',
        choices: ARCHIVE_COMPRESSIONS as string[],
        describe: "compress the whole output (deterministic); default: like mergeImages, the last input's compression",
      })
      .option('force', { type: 'boolean', describe: 'overwrite an existing output file' })
      .option('json', { type: 'boolean', describe: 'print a JSON summary on stdout' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { mergeImages } = await import('../../merge/index.js');
    const r = await mergeImages(a.inputs, a.output, {
      force: a.force,
      ...(a.compress !== undefined ? { compress: parseArchiveCompression(a.compress) } : {}),
      warn: (w) => process.stderr.write(`nixreg: warning: ${w}\n`),
      note: (n) => process.stderr.write(`nixreg: note: ${n}\n`),
    });
    if (a.json)
      process.stdout.write(
        JSON.stringify({
          output: a.output,
          images: r.images,
          layersStored: r.layersStored,
          layersShared: r.layersShared,
          size: r.size,
          uncompressedSize: r.uncompressedSize,
          compress: r.compress,
        }) + '\n',
      );
  },
};
