import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import type { Distribution } from './distribution.js';

/**
 * Azure Container Registry's manifest listing (`GET /acr/v1/<name>/_manifests`, paged by Link, 3 a page) in front
 * of Debian's registry, which has no such listing: answered from the registry's own storage directory; every
 * other request passes through, so manifests, tags and deletes are the real registry's.
 */
export interface ListingFront {
  url: string;
  host: string;
  close(): Promise<void>;
}

export function manifestsInStorage(reg: Distribution, repo: string): { digest: string; tags: string[] }[] {
  const base = join(reg.dir, 'data/docker/registry/v2/repositories', repo, '_manifests');
  const revs = join(base, 'revisions/sha256');
  const tagsDir = join(base, 'tags');
  const tagOf = new Map<string, string[]>();
  for (const t of existsSync(tagsDir) ? readdirSync(tagsDir) : []) {
    const link = join(tagsDir, t, 'current/link');
    if (!existsSync(link)) continue;
    const d = readFileSync(link, 'utf8').trim();
    tagOf.set(d, [...(tagOf.get(d) ?? []), t]);
  }
  return (existsSync(revs) ? readdirSync(revs) : [])
    .filter((hex) => existsSync(join(revs, hex, 'link')))
    .sort()
    .map((hex) => ({ digest: `sha256:${hex}`, tags: tagOf.get(`sha256:${hex}`) ?? [] }));
}

export async function startAcrListingFront(reg: Distribution): Promise<ListingFront> {
  const target = new URL(reg.url);
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const m = /^\/acr\/v1\/(.+)\/_manifests$/.exec(u.pathname);
    if (m && req.method === 'GET') {
      const all = manifestsInStorage(reg, m[1]!);
      const last = u.searchParams.get('last');
      const start = last ? all.findIndex((e) => e.digest === last) + 1 : 0;
      const page = all.slice(start, start + 3);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (start + 3 < all.length) headers.link = `</acr/v1/${m[1]}/_manifests?last=${page[page.length - 1]!.digest}&n=3>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ registry: reg.host, imageName: m[1], manifests: page }));
      return;
    }
    const fwd = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: reg.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}
