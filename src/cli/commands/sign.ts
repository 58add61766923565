import type { Argv, CommandModule } from 'yargs';
import { keyPassword } from '../key-password.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  reference: string;
  key: string;
  keyPasswordStdin?: boolean;
}

/** `nixreg sign REF --key KEY`: a cosign-compatible key-based signature of REF's manifest digest. */
export const command: CommandModule<object, Args> = {
  command: 'sign <reference>',
  describe: "sign an image's manifest digest like `cosign sign --key` (simple signing, ECDSA P-256, the sha256-<hex>.sig tag)",
  builder: (y) =>
    withRegistryFlags(y)
      .positional('reference', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO[:TAG|@DIGEST]' })
      .option('key', {
        type: 'string',
        demandOption: true,
        describe: 'PEM P-256 private key (PKCS#8 as openssl genpkey writes it; encrypted PKCS#8 takes a password)',
      })
      .option('key-password-stdin', { type: 'boolean', describe: 'read the key password from stdin (default: COSIGN_PASSWORD)' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { signImage } = await import('../../ops/sign.js');
    const password = await keyPassword(a.keyPasswordStdin);
    const r = await signImage(a.reference.replace(/^docker:\/\//, ''), { key: a.key, ...(password !== undefined ? { password } : {}) }, registryAccess(a));
    printResult(a, r, [`signed ${r.signed} -> ${r.signatureTag}`]);
  },
};
