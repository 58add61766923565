import type { Argv, CommandModule } from 'yargs';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
}

/** `nixreg delete REF`: delete a manifest by digest or tag (crane delete, skopeo delete). */
export const command: CommandModule<object, Args> = {
  command: 'delete <reference>',
  describe: 'delete a manifest by digest or tag (a tag deletes the manifest it names, and its other tags)',
  builder: (y) =>
    withRegistryFlags(y).positional('reference', {
      type: 'string',
      demandOption: true,
      describe: 'REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST',
    }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { deleteImage } = await import('../../ops/delete.js');
    const r = await deleteImage(a.reference, registryAccess(a));
    printResult(a, { Reference: r.reference, Digest: r.digest, Deleted: true }, [
      `deleted ${r.reference.includes('@') ? r.reference : `${r.reference} (${r.digest})`}`,
    ]);
  },
};
