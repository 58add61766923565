import type { Descriptor } from '../manifest/manifest.js';
import type { RegistryClient } from './client.js';

/**
 * Make a blob of `from` (another repository of the same registry) present in `to`'s repository: already there
 * (HEAD), mounted (POST ?mount=&from=, 201), or, when the registry opens an upload instead of mounting (202),
 * streamed across once through this process (its digest is verified on the way and by the registry on commit).
 */
export async function mountOrCopyBlob(to: RegistryClient, from: RegistryClient, blob: Descriptor): Promise<'exists' | 'mounted' | 'copied'> {
  if (await to.headBlob(blob.digest)) return 'exists';
  const start = await to.startUpload({ mount: blob.digest, from: from.repository });
  if (start.mounted) return 'mounted';
  try {
    const body = await from.getBlob(blob.digest, { size: blob.size });
    const next = await to.uploadBlobStream(start.location, body, blob.size);
    await to.finishUpload(next, blob.digest);
    return 'copied';
  } catch (e) {
    await to.cancelUpload(start.location).catch(() => {});
    throw e;
  }
}
