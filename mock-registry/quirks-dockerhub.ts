import type { Quirks } from './quirks.js';

/**
 * Docker Hub (registry-1.docker.io).
 * - The token realm is another host (https://auth.docker.io/token); here another port of 127.0.0.1
 *   (https://distribution.github.io/distribution/spec/auth/token/).
 * - Anonymous pulls get anonymous tokens; every manifest GET counts against a pull quota and answers
 *   `RateLimit-Limit: 100;w=21600`, `RateLimit-Remaining`, `Docker-RateLimit-Source`; beyond it 429 TOOMANYREQUESTS
 *   without Retry-After (https://docs.docker.com/docker-hub/usage/pulls/; https://github.com/docker/docs/issues/11648).
 * - A cross-repository mount needs pull on `from` in the token (the mock checks it always).
 */
export const dockerhub: Quirks = {
  auth: { mode: 'bearer', anonymousPull: true, service: 'registry.docker.io' },
  realmOnOtherPort: true,
  rateLimit: { limit: 100, windowSeconds: 21600, source: '127.0.0.1' },
};
