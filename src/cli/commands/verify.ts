import type { Argv, CommandModule } from 'yargs';
import { verifyImage } from '../../ops/sign.js';
import { keyPassword } from '../key-password.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
  key: string;
  keyPasswordStdin?: boolean;
}

/** `nixreg verify REF --key PUB`: REF's manifest has a signature made with the key (cosign verify --key). */
export const command: CommandModule<object, Args> = {
  command: 'verify <reference>',
  describe: "check an image's cosign key-based signature (exit 0 only when one verifies with the key and names the manifest)",
  builder: (y) =>
    withRegistryFlags(y)
      .positional('reference', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO[:TAG|@DIGEST]' })
      .option('key', { type: 'string', demandOption: true, describe: 'PEM P-256 public key (cosign.pub, openssl pkey -pubout), or the private key' })
      .option('key-password-stdin', { type: 'boolean', describe: 'with a private key: read its password from stdin' }) as unknown as Argv<Args>,
  handler: async (a) => {
    const password = await keyPassword(a.keyPasswordStdin);
    const r = await verifyImage(a.reference.replace(/^docker:\/\//, ''), { key: a.key, ...(password !== undefined ? { password } : {}) }, registryAccess(a));
    printResult(a, r, [`verified ${r.verified} (${r.signatures.length} signature${r.signatures.length === 1 ? '' : 's'})`]);
  },
};
