import type { CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { runBuild } from '../../nix/from-paths/index.js';
import type { ConfigFlags } from '../../nix/from-paths/conf.js';
import { runSingleLayerBuild } from '../../nix/from-paths/single-layer.js';
import { buildImageFlags, configFromArgs } from '../build-flags.js';
import { parseArchiveCompression } from '../../compression/archive.js';
import type { PushCompression } from '../../compression/compress.js';
import type { OutputFormat } from '../../nix/stream/index.js';
import { outputFormatOptions } from './stream.js';

/** The image-config flags are exactly the library's ConfigFlags (cmd, entrypoint, env, workdir, user, expose, label). */
interface Args extends ConfigFlags {
  name: string;
  path: string[];
  config?: string;
  architecture?: string;
  'max-layers': number;
  algorithm: 'auto' | 'popularity';
  'from-image'?: string;
  created?: string;
  mtime?: string;
  graph?: string;
  'write-conf'?: string;
  'gc-root'?: string | false;
  quiet?: boolean;
  'store-root'?: string;
  output?: string;
  force?: boolean;
  cache: boolean;
  'single-layer'?: boolean;
  overlay?: string;
  uid?: number;
  gid?: number;
  format: OutputFormat;
  compression?: PushCompression;
  'compression-level'?: number;
  compress?: string;
}

/** `nixreg build`: streamLayeredImage without Nix evaluation: store paths in, docker-archive out. */
export const command: CommandModule<object, Args> = {
  command: 'build',
  describe: 'build a layered image (like dockerTools.streamLayeredImage) from store paths: closure, layers, customisation layer, archive',
  builder: (y) =>
    y
      // the image-shaping flags are shared with `nixreg push --path` (src/cli/build-flags.ts)
      .options(buildImageFlags)
      .demandOption(['name', 'path'])
      .default('max-layers', 100)
      .default('algorithm', 'auto')
      .option('store-root', { type: 'string', describe: 'read /nix/store/... from DIR/nix/store/... (needs --graph)' })
      .option('output', { alias: 'o', type: 'string', describe: 'image output file (atomic), or - for stdout' })
      .option('force', { type: 'boolean', describe: 'overwrite existing output files' })
      .option('gc-root', {
        type: 'string',
        describe:
          "symlink keeping the customisation layer (a store path) from nix-store --gc, like nix-build's result (default: CONF.gcroot with --write-conf CONF; --no-gc-root: none)",
      })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' })
      .option('cache', { type: 'boolean', default: true, describe: 'cache layer digests (--no-cache disables)' })
      .options(outputFormatOptions)
      .option('single-layer', { type: 'boolean', describe: 'buildImage shape: roots, --overlay and the whole closure in ONE layer' })
      .option('overlay', { type: 'string', describe: 'with --single-layer: directory tree added on top of / (like extraCommands)' })
      .option('uid', { type: 'number', describe: 'with --single-layer: owner of the root entries (default 0)' })
      .option('gid', { type: 'number', describe: 'with --single-layer: group of the root entries (default 0)' }) as never,
  handler: async (a) => {
    const config = await configFromArgs(a);
    const outputFormat = {
      format: a.format,
      compression: a.compression,
      compressionLevel: a['compression-level'],
      compress: parseArchiveCompression(a.compress),
    };
    // what both kinds of build take
    const common = {
      name: a.name,
      paths: a.path,
      config,
      architecture: a.architecture,
      created: a.created,
      mtime: a.mtime,
      graphFile: a.graph,
      storeRoot: a['store-root'],
      output: a.output,
      writeConf: a['write-conf'],
      force: a.force,
      // yargs gives --no-gc-root as false; a bare --gc-root (no value) as ''
      gcRoot: a['gc-root'] === false ? (false as const) : a['gc-root'] || undefined,
      cache: a.cache,
      log: a.quiet ? undefined : (line: string) => process.stderr.write(line + '\n'),
    };
    if (a['single-layer']) {
      if (a.format !== 'docker-archive' || outputFormat.compress !== 'none' || a.compression !== undefined)
        throw usageError(
          '--format/--compression/--compress are not supported with --single-layer yet: it writes an uncompressed docker-archive (convert it with nixreg push or skopeo copy)',
        );
      // no base-image support in one-layer builds yet: refuse rather than silently drop the base (--max-layers/--algorithm do not apply)
      if (a['from-image']) throw usageError('--from-image cannot be used with --single-layer');
      await runSingleLayerBuild({ ...common, overlay: a.overlay, uid: a.uid, gid: a.gid });
      return;
    }
    if (a.overlay !== undefined || a.uid !== undefined || a.gid !== undefined) throw usageError('--overlay/--uid/--gid need --single-layer');
    await runBuild({ ...common, maxLayers: a['max-layers'], algorithm: a.algorithm, fromImage: a['from-image'], outputFormat });
  },
};
