import type { Quirks } from './quirks.js';

/**
 * GitLab container registry (registry.gitlab.com, token realm gitlab.com/jwt/auth).
 * - The realm is another host than the registry; here another port (https://docs.gitlab.com/ee/administration/packages/container_registry.html).
 * - Tokens live 5 minutes by default (https://github.com/moby/moby/issues/33558).
 * - A mount whose `from` the user cannot read answers 401 UNAUTHORIZED on the POST
 *   (https://github.com/google/go-containerregistry/issues/220; https://github.com/containerd/containerd/issues/14086).
 */
export const gitlab: Quirks = {
  auth: { mode: 'bearer', service: 'container_registry', tokenTtlSeconds: 300 },
  realmOnOtherPort: true,
  mountAuthFailure: 401,
};
