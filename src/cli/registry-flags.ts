import type { Argv } from 'yargs';
import { parseCredsFlag } from '../registry/auth/credentials.js';
import type { RegistryAccess } from '../registry/access.js';
import { networkOptions, withNetworkFlags, type NetworkArgs } from './network-flags.js';

/**
 * The flags of the commands that talk to one registry without reading an image (tags, digest, tag, delete, login,
 * index, gc): pull's auth and TLS flags, the bounded-waiting flags, and --json / --quiet for scripts.
 */
export interface RegistryArgs extends NetworkArgs {
  tlsVerify: boolean;
  creds?: string;
  authfile?: string;
  certDir?: string;
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

export function withRegistryFlags<T>(y: Argv<T>): Argv<T & RegistryArgs> {
  return withNetworkFlags(y)
    .option('tls-verify', { type: 'boolean', default: true, describe: 'verify TLS, https only (--tls-verify=false allows http)' })
    .option('creds', { type: 'string', describe: 'USER:PASSWORD (visible in ps: prefer login, an auth file or NIXREG_USERNAME/NIXREG_PASSWORD)' })
    .option('authfile', { type: 'string', describe: 'auth.json to read credentials from' })
    .option('cert-dir', { type: 'string', describe: 'directory with *.crt CAs and client *.cert/*.key' })
    .option('json', { type: 'boolean', describe: 'print one JSON document' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' })
    .option('debug', { type: 'boolean', describe: 'log the registry conversation to stderr (never secrets)' })
    .conflicts('json', 'quiet') as unknown as Argv<T & RegistryArgs>;
}

export function registryAccess(a: RegistryArgs): RegistryAccess {
  return {
    tlsVerify: a.tlsVerify,
    ...(a.creds !== undefined ? { creds: parseCredsFlag(a.creds) } : {}),
    ...(a.authfile ? { authfile: a.authfile } : {}),
    ...(a.certDir ? { certDir: a.certDir } : {}),
    ...networkOptions(a),
    ...(a.debug ? { log: (l: string) => void process.stderr.write(`debug: ${l}\n`) } : {}),
  };
}

/** Write the command's result: JSON with --json, the text lines otherwise, nothing with --quiet. */
export function printResult(a: Pick<RegistryArgs, 'json' | 'quiet'>, json: unknown, text: string[]): void {
  if (a.quiet) return;
  process.stdout.write(a.json ? JSON.stringify(json, null, 2) + '\n' : text.map((l) => l + '\n').join(''));
}
