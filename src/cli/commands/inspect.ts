import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { openSource, rawManifest } from '../../source/index.js';
import { sourceOptions, withSourceFlags, type SourceArgs } from '../../source/cli-flags.js';
import { formatInspect, inspectImage } from '../../inspect/inspect.js';

interface Args extends SourceArgs {
  source: string;
  json?: boolean;
  raw?: boolean;
  config?: boolean;
  tag?: string;
}

/** `nixreg inspect <source>`: skopeo inspect for every source nixreg reads. */
export const command: CommandModule<object, Args> = {
  command: 'inspect <source>',
  describe: 'show digests, platforms, layers and config of an image (like skopeo inspect)',
  builder: (y) =>
    withSourceFlags(y)
      .positional('source', {
        type: 'string',
        demandOption: true,
        describe: 'docker://REF, docker-archive:PATH[:NAME:TAG], oci:DIR[:REF], oci-archive:PATH[:REF], conf:PATH, or a path',
      })
      .option('json', { type: 'boolean', describe: 'one JSON object (skopeo inspect field names)' })
      .option('raw', { type: 'boolean', describe: 'the manifest bytes exactly (the index when the reference names one)' })
      .option('config', { type: 'boolean', describe: 'the config bytes exactly' })
      .option('tag', { alias: 't', type: 'string', describe: 'conf: override repo_tag (NAME:TAG)' }) as unknown as Argv<Args>,
  handler: async (a) => {
    if ([a.json, a.raw, a.config].filter(Boolean).length > 1) throw usageError('give at most one of --json, --raw, --config');
    const opts = sourceOptions(a);
    // --raw names no platform: an index is printed as is, even when none of its images is for this host
    if (a.raw) return void process.stdout.write(await rawManifest(a.source, opts));
    const src = await openSource(a.source, opts);
    try {
      if (a.config) process.stdout.write(src.configBytes);
      else if (a.json) process.stdout.write(JSON.stringify(inspectImage(src), null, 4) + '\n');
      else process.stdout.write(formatInspect(inspectImage(src)));
    } finally {
      await src.close();
    }
  },
};
