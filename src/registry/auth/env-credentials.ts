import { usageError } from '../../errors.js';
import type { ResolvedCredentials } from './resolved-credentials.js';

/**
 * NIXREG_USERNAME / NIXREG_PASSWORD, for CI where a secret arrives as a variable. They belong to the one registry
 * NIXREG_REGISTRY names (host[:port]; docker.io and its aliases are one), so they never reach another registry a
 * command talks to (a base image's, a mount source's).
 */
export const ENV_SOURCE = 'NIXREG_USERNAME/NIXREG_PASSWORD';

const HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const hostKey = (h: string): string => {
  const k = h
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, '')
    .replace(/\/.*$/, '');
  return HUB.has(k) ? 'docker.io' : k;
};

export function credentialsFromEnv(registry: string, env: NodeJS.ProcessEnv): ResolvedCredentials | undefined {
  const username = env.NIXREG_USERNAME;
  const password = env.NIXREG_PASSWORD;
  if (!username && !password) return undefined;
  const scope = env.NIXREG_REGISTRY;
  if (!scope) throw usageError('NIXREG_USERNAME/NIXREG_PASSWORD are set but NIXREG_REGISTRY, the registry they are for, is not; set it to host[:port]');
  if (!username || password === undefined) throw usageError('NIXREG_USERNAME and NIXREG_PASSWORD must be set together');
  if (hostKey(scope) !== hostKey(registry)) return undefined;
  return { username, password, source: ENV_SOURCE };
}
