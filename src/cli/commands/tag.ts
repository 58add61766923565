import type { Argv, CommandModule } from 'yargs';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
  tags: string[];
}

/** `nixreg tag REF NEWTAG...`: more tags for a manifest already in the registry (crane tag). */
export const command: CommandModule<object, Args> = {
  command: 'tag <reference> <tags..>',
  describe: 'add tags to an image in the registry (the same manifest bytes; no blob is read or written)',
  builder: (y) =>
    withRegistryFlags(y)
      .positional('reference', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO[:TAG|@DIGEST]' })
      .positional('tags', { type: 'string', array: true, demandOption: true, describe: 'new tags in the same repository' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { addTags } = await import('../../ops/tag.js');
    const r = await addTags(a.reference, a.tags.map(String), registryAccess(a));
    printResult(
      a,
      r,
      r.tagged.map((t) => `${t} ${r.digest}`),
    );
  },
};
