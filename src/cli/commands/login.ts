import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  registry: string;
  username?: string;
  passwordStdin?: boolean;
}

/** The password on stdin, without its final line break (docker login --password-stdin). */
async function readPassword(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** `nixreg login REGISTRY`: check and store credentials where docker, podman, skopeo and nixreg read them. */
export const command: CommandModule<object, Args> = {
  command: 'login <registry>',
  describe: 'check a username and password against a registry and store them in the auth file (mode 0600)',
  builder: (y) =>
    withRegistryFlags(y)
      .positional('registry', { type: 'string', demandOption: true, describe: 'host[:port], e.g. ghcr.io or 127.0.0.1:5000' })
      .option('authfile', { type: 'string', describe: 'auth.json to store the credentials in (default: the first one nixreg reads)' })
      .option('username', { alias: 'u', type: 'string', describe: 'default: $NIXREG_USERNAME' })
      .option('password-stdin', {
        type: 'boolean',
        describe: 'read the password from stdin (default: $NIXREG_PASSWORD); never pass it as an argument',
      }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { login } = await import('../../ops/login.js');
    if (a.creds !== undefined) throw usageError('login takes --username and --password-stdin, not --creds');
    const username = a.username ?? process.env.NIXREG_USERNAME ?? '';
    const password = a.passwordStdin ? await readPassword() : process.env.NIXREG_PASSWORD;
    if (password === undefined) throw usageError('give the password on stdin with --password-stdin (or in NIXREG_PASSWORD)');
    const r = await login(a.registry, username, password, registryAccess(a));
    printResult(a, { Registry: r.registry, Username: r.username, AuthFile: r.authfile }, [`Login Succeeded (${r.registry}, stored in ${r.authfile})`]);
  },
};
