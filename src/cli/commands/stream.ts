import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { parseArchiveCompression } from '../../compression/archive.js';
import type { PushCompression } from '../../compression/compress.js';
import { refuseTarOnTerminal } from '../terminal-guard.js';
import { looksLikeArchive } from '../archive-sniff.js';
import { usageError } from '../../errors.js';
import { LayerCache, OUTPUT_FORMATS, loadStreamConf, writeImageOutput, type OutputFormat } from '../../nix/stream/index.js';

interface Args {
  conf: string;
  tag?: string;
  output?: string;
  'store-root'?: string;
  cache: boolean;
  force?: boolean;
  quiet?: boolean;
  format: OutputFormat;
  compression?: PushCompression;
  'compression-level'?: number;
  compress?: string;
}

/** The output-format flags `nixreg stream` and `nixreg build` share. */
export const outputFormatOptions = {
  format: {
    choices: OUTPUT_FORMATS,
    default: 'docker-archive' as OutputFormat,
    describe: 'docker-archive (docker load), oci (layout directory, -o DIR) or oci-archive (the layout as a tar)',
  },
  compression: {
    choices: ['gzip', 'zstd', 'none'] as const,
    describe: 'layer compression of --format oci/oci-archive (default gzip; deterministic, as nixreg push)',
  },
  'compression-level': { type: 'number', describe: 'gzip 1-9 (default 1, BestSpeed like crane), zstd 1-19 (default 3)' },
  compress: { type: 'string', describe: 'compress the whole docker-archive: none (default), gz or zstd (deterministic)' },
} as const;

export const command: CommandModule<object, Args> = {
  command: 'stream <conf>',
  describe: 'write the image of a streamLayeredImage conf.json, byte-identical to nixpkgs stream_layered_image.py',
  builder: (y) =>
    y
      .positional('conf', { type: 'string', demandOption: true, describe: 'conf.json (the `conf` passthru of streamLayeredImage)' })
      .option('tag', { alias: ['t', 'repo_tag'], type: 'string', describe: 'override RepoTags (NAME:TAG)' })
      .option('output', { alias: 'o', type: 'string', describe: 'output file (atomic), or - for stdout (default); a directory for --format oci' })
      .option('store-root', { type: 'string', describe: 'read /nix/store/... from DIR/nix/store/... (names in the image unchanged)' })
      .option('cache', { type: 'boolean', default: true, describe: 'cache layer digests (--no-cache disables)' })
      .options(outputFormatOptions)
      .option('force', { type: 'boolean', describe: 'overwrite an existing output file' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' }) as never,
  handler: async (argv) => {
    if (argv.format !== 'oci') refuseTarOnTerminal(argv.output, 'stream');
    const compress = parseArchiveCompression(argv.compress);
    if (argv.conf !== '-' && looksLikeArchive(argv.conf))
      throw usageError(
        `stream: ${argv.conf} is an image archive, not a streamLayeredImage conf.json; stream builds from a conf (nixreg push, export and inspect take archives)`,
      );
    const conf = await loadStreamConf(argv.conf);
    const result = await writeImageOutput(conf, argv.output, {
      storeRoot: argv['store-root'],
      repoTag: argv.tag,
      cache: argv.cache ? new LayerCache() : undefined,
      log: argv.quiet ? undefined : (line: string) => process.stderr.write(line + '\n'),
      force: argv.force,
      format: argv.format,
      compression: argv.compression,
      compressionLevel: argv['compression-level'],
      compress,
    });
    // Test/bench hook: how many times layer bytes were generated (proves the cache and the single pass).
    if (process.env.NIXREG_STREAM_STATS && result.format === 'docker-archive')
      writeFileSync(process.env.NIXREG_STREAM_STATS, JSON.stringify(result.stats) + '\n');
  },
};
