import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { LayerCache, loadStreamConf, streamImageToFile, streamImageToStdout, type StreamResult } from '../../nix/stream/index.js';

interface Args {
  conf: string;
  tag?: string;
  output?: string;
  'store-root'?: string;
  cache: boolean;
  force?: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'stream <conf>',
  describe: 'write the image of a streamLayeredImage conf.json, byte-identical to nixpkgs stream_layered_image.py',
  builder: (y) =>
    y
      .positional('conf', { type: 'string', demandOption: true, describe: 'conf.json (the `conf` passthru of streamLayeredImage)' })
      .option('tag', { alias: ['t', 'repo_tag'], type: 'string', describe: 'override RepoTags (NAME:TAG)' })
      .option('output', { alias: 'o', type: 'string', describe: 'output file (atomic), or - for stdout (default)' })
      .option('store-root', { type: 'string', describe: 'read /nix/store/... from DIR/nix/store/... (names in the image unchanged)' })
      .option('cache', { type: 'boolean', default: true, describe: 'cache layer digests (--no-cache disables)' })
      .option('force', { type: 'boolean', describe: 'overwrite an existing output file' }) as never,
  handler: async (argv) => {
    const conf = await loadStreamConf(argv.conf);
    const opts = {
      storeRoot: argv['store-root'],
      repoTag: argv.tag,
      cache: argv.cache ? new LayerCache() : undefined,
      log: (line: string) => process.stderr.write(line + '\n'),
      force: argv.force,
    };
    const result: StreamResult =
      argv.output && argv.output !== '-'
        ? await streamImageToFile(conf, argv.output, opts)
        : await streamImageToStdout(conf, opts);
    // Test/bench hook: how many times layer bytes were generated (proves the cache and the single pass).
    if (process.env.NIXREG_STREAM_STATS) writeFileSync(process.env.NIXREG_STREAM_STATS, JSON.stringify(result.stats) + '\n');
  },
};
