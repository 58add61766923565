import { NixregError } from '../errors.js';
import { DIGEST_RE } from '../digest/sha256.js';
import { nextPageLink, type RegistryClient } from './client.js';
import { headerValue } from './transport.js';

/**
 * Every manifest of a repository, tagged or not. The OCI distribution spec has no such listing and distribution
 * 2.8 offers none; Azure Container Registry's `GET /acr/v1/<name>/_manifests` (paged by `Link: rel="next"`, as
 * `acr purge --untagged` reads it) is the one this speaks. undefined when the registry does not offer it (404).
 */
export interface ListedManifest {
  digest: string;
  tags: string[];
}

const MAX_PAGES = 10_000;
const MAX_PAGE_BYTES = 16 << 20;

export async function listManifests(client: RegistryClient): Promise<ListedManifest[] | undefined> {
  const what = `manifest listing of ${client.registry}/${client.repository}`;
  const out: ListedManifest[] = [];
  const seen = new Set<string>();
  let next: string | undefined = `/acr/v1/${client.repository}/_manifests`;
  while (next) {
    if (seen.has(next) || seen.size >= MAX_PAGES) throw new NixregError(`${what}: the registry's pages do not end (${seen.size} read)`);
    seen.add(next);
    const res = await client.send({
      method: 'GET',
      url: next,
      extraScopes: [`repository:${client.repository}:metadata_read`],
      bufferBody: { limit: MAX_PAGE_BYTES, what },
    });
    if (res.status === 404 && seen.size === 1) {
      await res.body.dump().catch(() => {});
      return undefined;
    }
    if (res.status !== 200) return client.fail(res, what);
    let page: { manifests?: unknown };
    try {
      page = JSON.parse((res.bytes ?? Buffer.alloc(0)).toString('utf8')) as { manifests?: unknown };
    } catch {
      throw new NixregError(`${what}: the registry answered with invalid JSON`);
    }
    const list = page?.manifests ?? [];
    if (!Array.isArray(list)) throw new NixregError(`${what}: "manifests" is not a list`);
    for (const m of list as { digest?: unknown; tags?: unknown }[]) {
      if (!m || typeof m.digest !== 'string' || !DIGEST_RE.test(m.digest)) throw new NixregError(`${what}: an entry has no sha256 digest`);
      out.push({ digest: m.digest, tags: Array.isArray(m.tags) ? m.tags.filter((t): t is string => typeof t === 'string') : [] });
    }
    next = nextPageLink(headerValue(res.headers, 'link'));
  }
  return out;
}
