import { parseStreamConf } from '../../nix/stream/index.js';
import { prepareBuild, runBuild, type BuildOptions } from '../../nix/from-paths/index.js';
import { pushConf, type PushConfOptions, type PushResult } from './push-conf.js';

export interface PushBuildOptions extends Omit<PushConfOptions, 'confFile' | 'conf'> {
  build: BuildOptions;
  /** also write the generated conf.json here (as `nixreg build --write-conf`) */
  writeConf?: string;
}

/**
 * `nixreg push --path /nix/store/…-app docker://reg/app:tag`: the `nixreg build` pipeline straight into the
 * registry. The build library prepares the conf exactly as for `nixreg build` (closure, layering, customisation
 * layer); the conf push then generates only the layers the registry lacks — nothing is written but the small
 * customisation layer the conf names, and no archive unless --output asks for one.
 */
export async function pushBuild(opts: PushBuildOptions): Promise<PushResult> {
  const { build, writeConf, ...push } = opts;
  // runBuild with only --write-conf prepares and writes the conf (atomically), and streams nothing
  const prepared = writeConf ? (await runBuild({ ...build, writeConf, ...(opts.force ? { force: true } : {}) })).prepared : await prepareBuild(build);
  const conf = parseStreamConf(prepared.confText, 'generated conf', opts.now);
  return pushConf({ ...push, confFile: 'generated conf', conf, ...(build.storeRoot ? { storeRoot: build.storeRoot } : {}) });
}
