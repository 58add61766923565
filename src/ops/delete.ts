import { notFoundError } from '../errors.js';
import type { RegistryAccess } from '../registry/access.js';
import { deleteManifest } from '../registry/manifest-delete.js';
import { refOf, withClient } from './registry-client.js';

export interface DeleteResult {
  reference: string;
  digest: string;
}

/**
 * Delete the manifest a reference names. A tag is resolved to its digest first and the manifest is deleted, as
 * `crane delete` and `skopeo delete` do: every other tag of that manifest goes with it.
 */
export async function deleteImage(ref: string, access: RegistryAccess = {}): Promise<DeleteResult> {
  return withClient(
    ref,
    access,
    async (c, r) => {
      const name = `${r.name}${r.digest ? '@' + r.digest : ':' + refOf(r)}`;
      let digest = r.digest;
      if (!digest) {
        const head = await c.headManifest(refOf(r));
        if (!head) throw notFoundError(`manifest ${name} not found on ${r.registry}; nothing was deleted`);
        digest = head.digest;
      }
      await deleteManifest(c, digest);
      return { reference: name, digest };
    },
    { push: true },
  );
}
