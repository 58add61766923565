import { NixregError } from '../errors.js';
import { parseDigest } from '../digest/sha256.js';
import { summarizeErrorBody } from './registry-errors.js';
import type { RegistryClient } from './client.js';

/**
 * DELETE /v2/<name>/manifests/<digest> (distribution spec "Deleting Manifests"): 202 when deleted. A registry that
 * does not allow deletes answers 405 (distribution: UNSUPPORTED unless storage.delete.enabled is true).
 */
export async function deleteManifest(client: RegistryClient, digest: string): Promise<void> {
  parseDigest(digest, 'manifest digest');
  const what = `manifest ${client.registry}/${client.repository}@${digest}`;
  const res = await client.send({
    method: 'DELETE',
    path: `/v2/${client.repository}/manifests/${digest}`,
    extraScopes: [`repository:${client.repository}:delete`],
  });
  if (res.status === 202 || res.status === 200 || res.status === 204) {
    await res.body.dump().catch(() => {});
    return;
  }
  if (res.status === 405) {
    const summary = await summarizeErrorBody(res);
    throw new NixregError(
      `${client.registry} does not allow deleting manifests (HTTP 405${summary ? `: ${summary}` : ''}); nothing was deleted. ` +
        'For distribution, start it with REGISTRY_STORAGE_DELETE_ENABLED=true (storage.delete.enabled)',
    );
  }
  return client.fail(res, `delete of ${what}`);
}
