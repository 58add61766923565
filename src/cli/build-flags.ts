import type { Options } from 'yargs';
import type { BuildOptions } from '../nix/from-paths/index.js';
import type { ConfigFlags } from '../nix/from-paths/conf.js';
import type { LayeringAlgorithm } from '../nix/layering/index.js';

/**
 * The flags that shape a layered image from store paths, shared by `nixreg build` and `nixreg push --path` so the
 * two commands cannot drift apart: one definition, one translation into the library's BuildOptions. (Output flags
 * — `-o`, `--force`, `--store-root` — stay with each command: they mean different things there.)
 */
const list = { type: 'string', array: true } as const;

export const buildImageFlags = {
  name: { type: 'string', describe: 'image NAME[:TAG] (lowercased; default tag: a hash of the conf)' },
  path: { ...list, describe: 'store path to put in the image; its bin/, etc/, ... are linked into / (repeatable)' },
  config: { type: 'string', describe: 'image config JSON file (Cmd, Entrypoint, Env, ...), like the `config` attribute' },
  cmd: { ...list, describe: 'Cmd: a JSON array, or one argument per flag' },
  entrypoint: { ...list, describe: 'Entrypoint: a JSON array, or one argument per flag' },
  env: { ...list, describe: 'Env entry KEY=VALUE (repeatable)' },
  workdir: { type: 'string', describe: 'WorkingDir' },
  user: { type: 'string', describe: 'User' },
  expose: { ...list, describe: 'ExposedPorts entry, e.g. 8080 or 53/udp (repeatable)' },
  label: { ...list, describe: 'Labels entry KEY=VALUE (repeatable)' },
  architecture: { type: 'string', describe: 'GOARCH of the image (default: this machine)' },
  'max-layers': { type: 'number', describe: 'maxLayers of the whole image (base layers and customisation layer included; default 100)' },
  algorithm: { choices: ['auto', 'popularity'], describe: 'layering: auto-layer (current nixpkgs, default) or popularity (2020-2024)' },
  'from-image': { type: 'string', describe: 'base image archive (docker-archive or stream output, optionally gzip)' },
  created: { type: 'string', describe: 'image creation time (ISO 8601 or "now"; default 1970-01-01T00:00:01Z)' },
  mtime: { type: 'string', describe: 'file mtime in the layers (ISO 8601 or "now"; default 1970-01-01T00:00:01Z)' },
  graph: { type: 'string', describe: 'closure graph JSON (exportReferencesGraph) instead of asking Nix' },
  'write-conf': { type: 'string', describe: 'also write the generated streamLayeredImage conf.json here' },
} satisfies Record<string, Options>;

export interface BuildImageArgs extends ConfigFlags {
  name?: string;
  path?: string[];
  config?: string;
  architecture?: string;
  'max-layers'?: number;
  algorithm?: LayeringAlgorithm;
  'from-image'?: string;
  created?: string;
  mtime?: string;
  graph?: string;
  'write-conf'?: string;
}

/**
 * The same flags for a command with positionals (push): a list flag takes ONE value per occurrence, so
 * `--path /nix/store/…-app docker://reg/app:1` leaves the destination alone (repeat the flag for more).
 */
export function buildImageFlagsOnePerFlag(): Record<string, Options> {
  return Object.fromEntries(Object.entries(buildImageFlags).map(([k, o]) => [k, 'array' in o ? { ...o, nargs: 1 } : o]));
}

/** Names of the build flags given on this command line (push refuses them without --path). */
export function givenBuildFlags(a: BuildImageArgs): string[] {
  return Object.keys(buildImageFlags).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
}

/** The image config from the shared flags: `--config FILE`, or the Cmd/Env/... flags. */
export async function configFromArgs(a: BuildImageArgs): Promise<BuildOptions['config']> {
  const { loadConfig } = await import('../nix/from-paths/index.js'); // the build pipeline, loaded only when used
  return loadConfig(a.config, { cmd: a.cmd, entrypoint: a.entrypoint, env: a.env, workdir: a.workdir, user: a.user, expose: a.expose, label: a.label });
}

/** The library's BuildOptions from the shared flags (`--config FILE` or the Cmd/Env/... flags). */
export async function buildOptionsFromArgs(a: BuildImageArgs, name: string, storeRoot: string | undefined): Promise<BuildOptions> {
  const config = await configFromArgs(a);
  return {
    name,
    paths: a.path ?? [],
    config,
    ...(a.architecture !== undefined ? { architecture: a.architecture } : {}),
    ...(a['max-layers'] !== undefined ? { maxLayers: a['max-layers'] } : {}),
    ...(a.algorithm !== undefined ? { algorithm: a.algorithm } : {}),
    ...(a['from-image'] !== undefined ? { fromImage: a['from-image'] } : {}),
    ...(a.created !== undefined ? { created: a.created } : {}),
    ...(a.mtime !== undefined ? { mtime: a.mtime } : {}),
    ...(a.graph !== undefined ? { graphFile: a.graph } : {}),
    ...(storeRoot !== undefined ? { storeRoot } : {}),
  };
}
