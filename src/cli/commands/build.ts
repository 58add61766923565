import type { CommandModule } from 'yargs';
import { loadConfig, runBuild } from '../../nix/build/index.js';
import type { ConfigFlags } from '../../nix/build/conf.js';

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
  'store-root'?: string;
  output?: string;
  force?: boolean;
  cache: boolean;
}

const list = { type: 'string', array: true } as const;

/** `nixreg build`: streamLayeredImage without Nix evaluation: store paths in, docker-archive out. */
export const command: CommandModule<object, Args> = {
  command: 'build',
  describe: 'build a layered image (like dockerTools.streamLayeredImage) from store paths: closure, layers, customisation layer, archive',
  builder: (y) =>
    y
      .option('name', { type: 'string', demandOption: true, describe: 'image NAME[:TAG] (lowercased; default tag: a hash of the conf)' })
      .option('path', { ...list, demandOption: true, describe: 'store path to put in the image; its bin/, etc/, ... are linked into / (repeatable)' })
      .option('config', { type: 'string', describe: 'image config JSON file (Cmd, Entrypoint, Env, ...), like the `config` attribute' })
      .option('cmd', { ...list, describe: 'Cmd: a JSON array, or one argument per flag' })
      .option('entrypoint', { ...list, describe: 'Entrypoint: a JSON array, or one argument per flag' })
      .option('env', { ...list, describe: 'Env entry KEY=VALUE (repeatable)' })
      .option('workdir', { type: 'string', describe: 'WorkingDir' })
      .option('user', { type: 'string', describe: 'User' })
      .option('expose', { ...list, describe: 'ExposedPorts entry, e.g. 8080 or 53/udp (repeatable)' })
      .option('label', { ...list, describe: 'Labels entry KEY=VALUE (repeatable)' })
      .option('architecture', { type: 'string', describe: 'GOARCH of the image (default: this machine)' })
      .option('max-layers', { type: 'number', default: 100, describe: 'maxLayers of the whole image (base layers and customisation layer included)' })
      .option('algorithm', { choices: ['auto', 'popularity'] as const, default: 'auto' as const, describe: 'layering: auto-layer (current nixpkgs) or popularity (2020-2024)' })
      .option('from-image', { type: 'string', describe: 'base image archive (docker-archive or stream output, optionally gzip)' })
      .option('created', { type: 'string', describe: 'image creation time (ISO 8601 or "now"; default 1970-01-01T00:00:01Z)' })
      .option('mtime', { type: 'string', describe: 'file mtime in the layers (ISO 8601 or "now"; default 1970-01-01T00:00:01Z)' })
      .option('graph', { type: 'string', describe: 'closure graph JSON (exportReferencesGraph) instead of asking Nix' })
      .option('write-conf', { type: 'string', describe: 'also write the generated streamLayeredImage conf.json here' })
      .option('store-root', { type: 'string', describe: 'read /nix/store/... from DIR/nix/store/... (needs --graph)' })
      .option('output', { alias: 'o', type: 'string', describe: 'image output file (atomic), or - for stdout' })
      .option('force', { type: 'boolean', describe: 'overwrite existing output files' })
      .option('cache', { type: 'boolean', default: true, describe: 'cache layer digests (--no-cache disables)' }) as never,
  handler: async (a) => {
    const config = await loadConfig(a.config, {
      cmd: a.cmd,
      entrypoint: a.entrypoint,
      env: a.env,
      workdir: a.workdir,
      user: a.user,
      expose: a.expose,
      label: a.label,
    });
    await runBuild({
      name: a.name,
      paths: a.path,
      config,
      architecture: a.architecture,
      maxLayers: a['max-layers'],
      algorithm: a.algorithm,
      fromImage: a['from-image'],
      created: a.created,
      mtime: a.mtime,
      graphFile: a.graph,
      storeRoot: a['store-root'],
      output: a.output,
      writeConf: a['write-conf'],
      force: a.force,
      cache: a.cache,
      log: (line) => process.stderr.write(line + '\n'),
    });
  },
};
