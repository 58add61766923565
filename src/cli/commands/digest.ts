import type { Argv, CommandModule } from 'yargs';
import { parsePlatform } from '../../manifest/platform-string.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
  platform?: string;
}

/** `nixreg digest REF`: the manifest digest (crane digest, skopeo inspect --format {{.Digest}}). */
export const command: CommandModule<object, Args> = {
  command: 'digest <reference>',
  describe: "print an image's manifest digest (with --platform, that platform's)",
  builder: (y) =>
    withRegistryFlags(y)
      .positional('reference', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO[:TAG|@DIGEST]' })
      .option('platform', { type: 'string', describe: "os/arch[/variant]: the digest of that platform's image in an index" }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { manifestDigest } = await import('../../ops/digest.js');
    const platform = a.platform !== undefined ? parsePlatform(a.platform) : undefined;
    const r = await manifestDigest(a.reference, registryAccess(a), platform);
    printResult(a, r, [r.digest]);
  },
};
