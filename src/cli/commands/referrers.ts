import type { Argv, CommandModule } from 'yargs';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
  artifactType?: string;
}

/** `nixreg referrers REF`: the artifacts (SBOMs, provenance, signatures) whose subject is REF's manifest. */
export const command: CommandModule<object, Args> = {
  command: 'referrers <reference>',
  describe: 'list the artifacts attached to an image (OCI referrers API, or the sha256-<hex> tag where the registry has none)',
  builder: (y) =>
    withRegistryFlags(y)
      .positional('reference', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO[:TAG|@DIGEST]' })
      .option('artifact-type', { type: 'string', describe: 'only artifacts of this type (e.g. application/vnd.cyclonedx+json)' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { referrersOf } = await import('../../ops/referrers.js');
    const r = await referrersOf(a.reference.replace(/^docker:\/\//, ''), registryAccess(a), a.artifactType ? { artifactType: a.artifactType } : {});
    printResult(
      a,
      r,
      r.referrers.map((d) => `${d.digest} ${d.artifactType ?? d.mediaType}`),
    );
  },
};
