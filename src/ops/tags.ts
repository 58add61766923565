import type { RegistryAccess } from '../registry/access.js';
import { usageError } from '../errors.js';
import { parseImageReference } from '../reference/reference.js';
import { withClient } from './registry-client.js';

/** Every tag of a repository, all pages (`Link: rel="next"`) in the registry's order. */
export async function listTags(repo: string, access: RegistryAccess = {}, pageSize?: number): Promise<{ repository: string; tags: string[] }> {
  const r = parseImageReference(repo);
  if (r.tag || r.digest) throw usageError(`tags takes a repository without a tag or digest, got "${repo.slice(0, 200)}"`);
  return withClient(r, access, async (c) => ({ repository: r.name, tags: await c.listTags(pageSize ? { pageSize } : {}) }));
}
