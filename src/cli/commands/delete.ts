import type { Argv, CommandModule } from 'yargs';
import { deleteImage } from '../../ops/delete.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
}

/** `nixreg delete REF`: delete a manifest by digest or tag (crane delete, skopeo delete). */
export const command: CommandModule<object, Args> = {
  command: 'delete <reference>',
  describe: 'delete a manifest by digest or tag (a tag deletes the manifest it names, and its other tags)',
  builder: (y) =>
    withRegistryFlags(y).positional('reference', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST' }) as unknown as Argv<Args>,
  handler: async (a) => {
    const r = await deleteImage(a.reference, registryAccess(a));
    printResult(a, { Reference: r.reference, Digest: r.digest, Deleted: true }, [`deleted ${r.reference.includes('@') ? r.reference : `${r.reference} (${r.digest})`}`]);
  },
};
