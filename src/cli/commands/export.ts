import type { Argv, CommandModule } from 'yargs';
import { sourceOptions, withOneSource, type SourceArgs } from '../source-flags.js';

interface Args extends SourceArgs {
  source: string;
  output: string;
  force?: boolean;
  tag?: string;
}

/** `nixreg export <source> -o fs.tar`: dockerTools.exportImage / `docker export` without a VM or a daemon. */
export const command: CommandModule<object, Args> = {
  command: 'export <source>',
  describe: "write an image's flattened root filesystem as one tar (like docker export / dockerTools.exportImage)",
  builder: (y) =>
    withOneSource(y)
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output tar (atomic), or - for stdout' })
      .option('force', { type: 'boolean', describe: 'overwrite an existing output file' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const [{ openSource }, { exportImage }] = await Promise.all([import('../../source/index.js'), import('../../export/index.js')]);
    const src = await openSource(a.source, sourceOptions(a));
    try {
      const stats = await exportImage(src, a.output, { force: a.force });
      if (a.output !== '-') process.stderr.write(`wrote ${a.output}: ${stats.entries} entries, ${stats.bytes} bytes\n`);
    } finally {
      await src.close();
    }
  },
};
