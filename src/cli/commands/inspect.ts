import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { sourceOptions, withOneSource, type SourceArgs } from '../source-flags.js';
import type { PushFormat } from '../../sink/registry/image-manifest.js';
import type { PushCompression } from '../../compression/compress.js';

interface Args extends SourceArgs {
  source: string;
  json?: boolean;
  raw?: boolean;
  config?: boolean;
  format?: string;
  pushDigest?: boolean;
  pushFormat?: PushFormat;
  compression?: PushCompression;
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
      .option('config', { type: 'boolean', describe: 'the config bytes exactly (also with --raw)' })
      .option('format', {
        alias: 'f',
        type: 'string',
        describe: 'Go template over the --json fields, as skopeo: {{.Digest}}, {{.Labels.KEY}}, {{index .Labels "KEY"}}, {{json .}}, {{json .Field}}',
      })
      .option('push-digest', {
        type: 'boolean',
        describe: 'conf: also compute PushDigest, the manifest digest nixreg push gives the image (compresses every layer once, writes nothing)',
      })
      .option('push-format', { choices: ['docker', 'oci'] as const, describe: 'with --push-digest: as push --format (default docker)' })
      .option('compression', { choices: ['gzip', 'zstd', 'none'] as const, describe: 'with --push-digest: as push --compression (default gzip)' })
      .option('tags', {
        type: 'boolean',
        default: true,
        describe: "docker://: list the repository's tags as RepoTags (--no-tags skips the request)",
      }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const [{ openSource, rawManifest }, { formatInspect, inspectImage, listedTags }, { renderTemplate }, { pushManifestDigest }] = await Promise.all([
      import('../../source/index.js'),
      import('../../inspect/inspect.js'),
      import('../../inspect/format-template.js'),
      import('../../inspect/push-digest.js'),
    ]);
    // --config --raw: the config blob's bytes, as skopeo inspect --config --raw
    const raw = a.raw && !a.config;
    if ([a.json, raw, a.config].filter(Boolean).length > 1) throw usageError('give at most one of --json, --raw, --config');
    if (a.format !== undefined && (a.json || a.raw || a.config)) throw usageError('--format prints its template alone: drop --json, --raw and --config');
    // a bad template fails before any request
    if (a.format !== undefined) renderTemplate(a.format, null, { checkOnly: true });
    if ((a.pushFormat || a.compression) && !a.pushDigest) throw usageError('--push-format and --compression apply to --push-digest');
    if (a.pushDigest && (a.raw || a.config)) throw usageError('--push-digest adds a field to the summary; drop --raw and --config');
    const opts = sourceOptions(a);
    // --raw names no platform: an index is printed as is, even when none of its images is for this host
    if (raw) return void process.stdout.write(await rawManifest(a.source, opts));
    const src = await openSource(a.source, opts);
    try {
      if (a.config) process.stdout.write(src.configBytes);
      else {
        const repoTags = a.tags ? await listedTags(a.source, opts, (w) => process.stderr.write(`warning: ${w}\n`)) : src.kind === 'registry' ? [] : undefined;
        const result = inspectImage(src, repoTags ? { repoTags } : {});
        if (a.pushDigest) result.PushDigest = await pushManifestDigest(src, a.pushFormat, a.compression);
        if (a.format !== undefined) process.stdout.write(renderTemplate(a.format, result));
        else process.stdout.write(a.json ? JSON.stringify(result, null, 4) + '\n' : formatInspect(result));
      }
    } finally {
      await src.close();
    }
  },
};
