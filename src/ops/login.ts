import { authError, ExitCode, NixregError, notFoundError, usageError } from '../errors.js';
import { clientOptions, type RegistryAccess } from '../registry/access.js';
import { authKeyFor, defaultAuthFile, removeLogin, storeLogin } from '../registry/auth/auth-file-writer.js';
import { RegistryClient } from '../registry/client.js';

export interface LoginResult {
  registry: string;
  username: string;
  authfile: string;
}

/** docker's `login` argument: a host[:port], optionally written as a URL; Docker Hub's names become docker.io. */
export function loginRegistry(value: string): string {
  const host = value
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/.*$/, '');
  if (!/^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?|\[[0-9a-fA-F:]+\])(?::\d+)?$/.test(host))
    throw usageError(`"${value.slice(0, 100)}" is not a registry host[:port]`);
  return authKeyFor(host.toLowerCase());
}

/**
 * Check `username`/`password` against the registry (GET /v2/ with them, through its Basic or token challenge) and
 * store them in the auth file (default: the first one nixreg reads). Nothing is written when the registry refuses them.
 */
export async function login(
  registryArg: string,
  username: string,
  password: string,
  access: RegistryAccess & { authfile?: string } = {},
): Promise<LoginResult> {
  const registry = loginRegistry(registryArg);
  if (!username) throw usageError('login needs a username (--username or NIXREG_USERNAME)');
  if (!password) throw usageError('login needs a password (--password-stdin or NIXREG_PASSWORD)');
  const { authfile: _a, creds: _c, ...rest } = access;
  // the repository only shapes the token request's scope; /v2/ itself names none
  const client = new RegistryClient({ ...clientOptions(rest), registry, repository: 'library/nixreg-login', creds: { username, password } });
  try {
    let res;
    try {
      res = await client.send({ method: 'GET', path: '/v2/' });
    } catch (e) {
      if (e instanceof NixregError && e.exitCode === ExitCode.auth)
        throw authError(`login to ${registry} failed: the registry refused the username and password; nothing was stored`);
      throw e;
    }
    await res.body.dump().catch(() => {});
    if (res.status === 401 || res.status === 403)
      throw authError(`login to ${registry} failed: the registry refused the username and password (HTTP ${res.status}); nothing was stored`);
    if (res.status !== 200) throw new NixregError(`login to ${registry} failed: GET /v2/ answered HTTP ${res.status}; nothing was stored`);
  } finally {
    await client.close();
  }
  const authfile = access.authfile ?? defaultAuthFile(access.env);
  await storeLogin(authfile, registry, username, password);
  return { registry, username, authfile };
}

/** Remove the registry's stored credentials; a not-found error when the file holds none for it. */
export async function logout(registryArg: string, o: { authfile?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ registry: string; authfile: string }> {
  const registry = loginRegistry(registryArg);
  const authfile = o.authfile ?? defaultAuthFile(o.env);
  if (!(await removeLogin(authfile, registry))) throw notFoundError(`not logged in to ${registry} in ${authfile}; nothing was removed`);
  return { registry, authfile };
}
