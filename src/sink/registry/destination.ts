import { usageError } from '../../errors.js';
import { parseImageReference, TAG_RE, type ImageReference } from '../../reference/reference.js';
import { RegistryClient } from '../../registry/client.js';
import { clientOptions, type RegistryAccess } from '../../registry/access.js';

export interface Destination {
  ref: ImageReference;
  client: RegistryClient;
  /** First = the reference's tag (default latest), then --additional-tag values, deduplicated. */
  tags: string[];
  /** `registry/repository` */
  repoName: string;
}

export function parseDockerDestination(dest: string, what = 'destination'): ImageReference {
  if (!dest.startsWith('docker://')) throw usageError(`${what} must be docker://REGISTRY/REPOSITORY[:TAG], got "${dest.slice(0, 200)}"`);
  return parseImageReference(dest);
}

export function openDestination(dest: string, additionalTags: readonly string[], access: RegistryAccess): Destination {
  const ref = parseDockerDestination(dest);
  if (ref.digest) throw usageError(`destination ${dest} names a digest; push to a tag (the digest is printed after the push)`);
  for (const t of additionalTags) if (!TAG_RE.test(t)) throw usageError(`invalid --additional-tag "${t.slice(0, 140)}"`);
  const tags = [...new Set([ref.tag ?? 'latest', ...additionalTags])];
  const client = RegistryClient.forReference(ref, { ...clientOptions(access), pushScope: true });
  return { ref, client, tags, repoName: `${ref.registry}/${ref.repository}` };
}

/** PUT the manifest under every tag (the first PUT stores it; the others only add tags). Returns its digest. */
export async function putTags(dest: Destination, manifest: Buffer, mediaType: string): Promise<string> {
  let digest = '';
  for (const tag of dest.tags) digest = await dest.client.putManifest(tag, manifest, mediaType);
  return digest;
}
