import type { Argv, CommandModule } from 'yargs';
import { printResult, type RegistryArgs } from '../registry-flags.js';

interface Args extends Pick<RegistryArgs, 'json' | 'quiet' | 'authfile'> {
  registry: string;
}

/** `nixreg logout REGISTRY`: remove the registry's entry from the auth file login writes. */
export const command: CommandModule<object, Args> = {
  command: 'logout <registry>',
  describe: "remove a registry's stored credentials from the auth file",
  builder: (y) =>
    y
      .positional('registry', { type: 'string', demandOption: true, describe: 'host[:port]' })
      .option('authfile', { type: 'string', describe: 'auth.json to edit (default: the one login writes)' })
      .option('json', { type: 'boolean', describe: 'print one JSON document' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { logout } = await import('../../ops/login.js');
    const r = await logout(a.registry, a.authfile ? { authfile: a.authfile } : {});
    printResult(a, { Registry: r.registry, AuthFile: r.authfile, Removed: true }, [`Removed login credentials for ${r.registry} from ${r.authfile}`]);
  },
};
