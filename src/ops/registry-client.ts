import { clientOptions, type RegistryAccess } from '../registry/access.js';
import { RegistryClient } from '../registry/client.js';
import { parseImageReference, type ImageReference } from '../reference/reference.js';

/** Run `fn` with a client for the reference's repository, closed afterwards whatever happens. */
export async function withClient<T>(
  ref: ImageReference | string,
  access: RegistryAccess,
  fn: (c: RegistryClient, r: ImageReference) => Promise<T>,
  o: { push?: boolean } = {},
): Promise<T> {
  const r = typeof ref === 'string' ? parseImageReference(ref) : ref;
  const client = new RegistryClient({ ...clientOptions(access), registry: r.registry, repository: r.repository, ...(o.push ? { pushScope: true } : {}) });
  try {
    return await fn(client, r);
  } finally {
    await client.close();
  }
}

/** The tag or digest a reference names (`latest` when it names neither, like docker). */
export const refOf = (r: ImageReference): string => r.digest ?? r.tag ?? 'latest';
