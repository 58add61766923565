import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { SBOM_FORMATS, type SbomFormat } from '../../sbom/model.js';
import { buildImageFlags, buildOptionsFromArgs, givenBuildFlags, type BuildImageArgs } from '../build-flags.js';
import { ownVersion } from '../own-version.js';

interface Args extends BuildImageArgs {
  source?: string;
  output?: string;
  format: SbomFormat;
  force?: boolean;
  storeRoot?: string;
  tag?: string;
  cache: boolean;
}

/** `nixreg sbom`: the SBOM of the image a conf (or store paths) makes: every store path, its layer, the closure. */
export const command: CommandModule<object, Args> = {
  command: 'sbom [source]',
  describe: 'write a CycloneDX 1.6 or SPDX 2.3 SBOM of the image a conf.json or --path STORE_PATH... makes',
  builder: (y) =>
    y
      .positional('source', { type: 'string', describe: 'conf.json of streamLayeredImage (or give --path)' })
      .options(buildImageFlags)
      .option('output', { alias: 'o', type: 'string', describe: 'write the document to FILE (default stdout)' })
      .option('format', { choices: SBOM_FORMATS, default: 'cyclonedx' as SbomFormat, describe: 'document format' })
      .option('force', { type: 'boolean', describe: 'overwrite an existing --output file' })
      .option('store-root', { type: 'string', describe: 'read /nix/store/... from DIR/nix/store/...' })
      .option('tag', { alias: 't', type: 'string', describe: 'conf: override repo_tag (NAME:TAG)' })
      .option('cache', { type: 'boolean', default: true, describe: 'cache layer digests (--no-cache disables)' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { renderSbom, sbomInput, writeDocument } = await import('../../ops/sbom.js');
    const fromPaths = (a.path?.length ?? 0) > 0;
    if (fromPaths && a.source !== undefined) throw usageError('give a conf.json or --path STORE_PATH..., not both');
    if (!fromPaths && a.source === undefined) throw usageError('give a conf.json or --path STORE_PATH...');
    const extra = givenBuildFlags(a).filter((f) => f !== 'path' && f !== 'graph');
    if (!fromPaths && extra.length) throw usageError(`--${extra[0]} shapes an image from store paths: it needs --path`);
    const input = await sbomInput({
      ...(fromPaths
        ? { build: await buildOptionsFromArgs(a, a.name ?? 'image', a.storeRoot) }
        : { confFile: a.source!.replace(/^conf:/, ''), ...(a.graph ? { graphFile: a.graph } : {}) }),
      ...(a.storeRoot ? { storeRoot: a.storeRoot } : {}),
      ...(a.tag ? { repoTag: a.tag } : {}),
      cache: a.cache,
      ...(process.env.SOURCE_DATE_EPOCH !== undefined ? { sourceDateEpoch: process.env.SOURCE_DATE_EPOCH } : {}),
      toolVersion: ownVersion(),
      log: (line) => process.stderr.write(`nixreg: warning: ${line}\n`),
    });
    await writeDocument(renderSbom(input, a.format), a.output, a.force);
  },
};
