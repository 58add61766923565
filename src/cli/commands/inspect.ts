import type { Argv, CommandModule } from 'yargs';
import { openSource, rawManifest } from '../../source/index.js';
import { usageError } from '../../errors.js';
import { sourceOptions, withOneSource, type SourceArgs } from '../source-flags.js';
import { formatInspect, inspectImage, listedTags } from '../../inspect/inspect.js';

interface Args extends SourceArgs {
  source: string;
  json?: boolean;
  raw?: boolean;
  config?: boolean;
  tag?: string;
  tags: boolean;
}

/** `nixreg inspect <source>`: skopeo inspect for every source nixreg reads. */
export const command: CommandModule<object, Args> = {
  command: 'inspect <source>',
  describe: 'show digests, platforms, layers and config of an image (like skopeo inspect)',
  builder: (y) =>
    withOneSource(y)
      .option('json', { type: 'boolean', describe: 'one JSON object (skopeo inspect field names)' })
      .option('raw', { type: 'boolean', describe: 'the manifest bytes exactly (the index when the reference names one)' })
      .option('config', { type: 'boolean', describe: 'the config bytes exactly' })
      .option('tags', { type: 'boolean', default: true, describe: "docker://: list the repository's tags as RepoTags (--no-tags skips the request)" }) as unknown as Argv<Args>,
  handler: async (a) => {
    if ([a.json, a.raw, a.config].filter(Boolean).length > 1) throw usageError('give at most one of --json, --raw, --config');
    const opts = sourceOptions(a);
    // --raw names no platform: an index is printed as is, even when none of its images is for this host
    if (a.raw) return void process.stdout.write(await rawManifest(a.source, opts));
    const src = await openSource(a.source, opts);
    try {
      if (a.config) process.stdout.write(src.configBytes);
      else {
        const repoTags = a.tags ? await listedTags(a.source, opts, (w) => process.stderr.write(`warning: ${w}\n`)) : src.kind === 'registry' ? [] : undefined;
        const result = inspectImage(src, repoTags ? { repoTags } : {});
        process.stdout.write(a.json ? JSON.stringify(result, null, 4) + '\n' : formatInspect(result));
      }
    } finally {
      await src.close();
    }
  },
};

