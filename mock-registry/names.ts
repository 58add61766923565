/**
 * Grammar from the OCI Distribution Spec: repository names, tags and digests, and the URL routes built from them.
 * Names may contain slashes, so each route is matched by its fixed suffix, not by splitting the path.
 */
export const NAME_RE = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Any syntactically valid digest (so sha512 gets "unsupported", not "not found"). */
export const ANY_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
export const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
/** distribution's limit on the whole name; the spec leaves it to registries. */
export const MAX_NAME_LENGTH = 255;

export type RouteKind = 'ping' | 'manifest' | 'blob' | 'upload' | 'tags' | 'catalog' | 'referrers' | 'token';

export interface Route {
  kind: RouteKind;
  name?: string;
  /** tag or digest (manifest), digest (blob, referrers), upload session id (upload; '' for POST) */
  ref?: string;
}

const ROUTES: Array<[RouteKind, RegExp]> = [
  ['upload', /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/],
  ['blob', /^\/v2\/(.+)\/blobs\/([^/]+)$/],
  ['manifest', /^\/v2\/(.+)\/manifests\/([^/]+)$/],
  ['tags', /^\/v2\/(.+)\/tags\/list$/],
  ['referrers', /^\/v2\/(.+)\/referrers\/([^/]+)$/],
];

export function parseRoute(pathname: string): Route | undefined {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'ping' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  if (pathname === '/token') return { kind: 'token' };
  for (const [kind, re] of ROUTES) {
    const m = re.exec(pathname);
    if (m) return { kind, name: m[1], ref: m[2] === undefined ? undefined : safeDecode(m[2]) };
  }
  return undefined;
}

export const validName = (name: string): boolean => name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
export const isDigestRef = (ref: string): boolean => ref.includes(':');

/** Clients may percent-encode the ':' of a digest; a malformed escape is left as is (and then fails validation). */
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
