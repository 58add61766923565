import { readFile } from 'node:fs/promises';
import { NixregError, describeSystemError, usageError } from '../../errors.js';
import { openAtomic } from '../../util/atomic-file.js';
import { LayerCache, parseStreamConf, writeImageOutput, checkOutputOptions, type StreamOutputOptions, type StreamOutputResult } from '../stream/index.js';
import { configFromFlags, type ConfigFlags } from './conf.js';
import { prepareBuild, type BuildOptions, type PreparedBuild } from './prepare.js';
import { addGcRoot } from './gc-root.js';

export { prepareBuild, splitName, type BuildOptions, type PreparedBuild } from './prepare.js';
export { configFromFlags, normalizeTime, serializeConf, storePathsIn, type ConfJson } from './conf.js';
export { prepareSingleLayer, runSingleLayerBuild, type SingleLayerOptions, type RunSingleLayerOptions } from './single-layer.js';

export interface RunBuildOptions extends BuildOptions {
  /** image output: a file (atomic) or '-' for stdout; undefined = conf only */
  output?: string;
  writeConf?: string;
  /**
   * A GC root (symlink) for the customisation layer when it went into the Nix store, so a written conf keeps
   * working after `nix-store --gc`: default `<writeConf>.gcroot` when a conf file is written; false: none.
   */
  gcRoot?: string | false;
  force?: boolean;
  cache?: boolean;
  log?: (line: string) => void;
  /** --format / --compression / --compression-level / --compress (same meaning as on `nixreg stream`). */
  outputFormat?: Pick<StreamOutputOptions, 'format' | 'compression' | 'compressionLevel' | 'compress'>;
}

/** `--config FILE` (an image config like dockerTools' `config` attr) or the flag form, never both. */
export async function loadConfig(file: string | undefined, flags: ConfigFlags): Promise<Record<string, unknown>> {
  const flagged = configFromFlags(flags);
  if (!file) return flagged;
  if (Object.keys(flagged).length) throw usageError('--config FILE cannot be combined with --cmd/--entrypoint/--env/--workdir/--user/--expose/--label');
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw usageError(`--config ${file}: ${err instanceof SyntaxError ? 'not valid JSON: ' + err.message : describeSystemError(err)}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw usageError(`--config ${file}: expected a JSON object (Cmd, Env, ...)`);
  return doc as Record<string, unknown>;
}

/**
 * `nixreg build`: prepare the conf like streamLayeredImage's Nix side, then hand it to the very same stream pipeline
 * as `nixreg stream` (parsed by the same conf reader, so a conf we write and one read from disk behave identically).
 */
export async function runBuild(o: RunBuildOptions): Promise<{ prepared: PreparedBuild; result?: StreamOutputResult }> {
  if (!o.output && !o.writeConf) throw usageError('give -o FILE (or - for stdout) for the image, and/or --write-conf FILE');
  if (o.output) checkOutputOptions(o.output, o.outputFormat ?? {});
  const prepared = await prepareBuild(o);
  if (o.writeConf) {
    const out = await openAtomic(o.writeConf, { force: o.force });
    try {
      await new Promise<void>((res, rej) => out.stream.write(prepared.confText, (e) => (e ? rej(e) : res())));
      await out.commit();
    } catch (err) {
      await out.abort();
      throw err instanceof NixregError ? err : new NixregError(`cannot write ${o.writeConf}: ${describeSystemError(err)}`);
    }
  }
  const root = o.gcRoot ?? (o.writeConf && o.writeConf !== '-' ? `${o.writeConf}.gcroot` : false);
  if (root && prepared.customisation.dir.startsWith('/nix/store/') && !o.storeRoot) {
    await addGcRoot(prepared.customisation.dir, root);
    o.log?.(`GC root ${root} -> ${prepared.customisation.dir}`);
  }
  if (!o.output) return { prepared };
  const conf = parseStreamConf(prepared.confText, 'generated conf');
  const opts = { storeRoot: o.storeRoot, cache: o.cache === false ? undefined : new LayerCache(), log: o.log, force: o.force };
  // Same entry point as `nixreg stream`: with stdout redirected to a regular file, layers are written once and
  // their headers patched (streamImageToStdout) instead of a hashing pass per uncached layer first.
  const result = await writeImageOutput(conf, o.output, { ...opts, ...o.outputFormat });
  return { prepared, result };
}
