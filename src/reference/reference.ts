import { usageError } from '../errors.js';
import { DIGEST_RE } from '../digest/sha256.js';

/**
 * Image references, normalised exactly like docker/distribution's `reference.ParseNormalizedNamed` (which skopeo,
 * podman and docker use), so names we print and write into archives match theirs byte for byte.
 */
export interface ImageReference {
  /** Registry as users write it: 'docker.io', 'quay.io', '127.0.0.1:5000', 'localhost:5000'. */
  registry: string;
  /** Host the API is spoken to: 'registry-1.docker.io' for docker.io, otherwise `registry`. */
  apiHost: string;
  /** Repository path inside the registry: 'library/nginx'. */
  repository: string;
  tag?: string;
  digest?: string;
  /** Fully normalised name without tag/digest: 'docker.io/library/nginx'. */
  name: string;
}

export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

// Grammar from github.com/distribution/reference regexp.go. Go's regexp is linear-time; JavaScript's backtracks, so
// the separator is written `-+` (same language as distribution's `[-]*`, which let `[a-z0-9]+` split a run of
// letters in exponentially many ways: 20 letters and a '!' took 22 s to reject).
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
export const TAG_RE = /^[\w][\w.-]{0,127}$/;
const NAME_TOTAL_LENGTH_MAX = 255;
const ANCHORED_ID_RE = /^[a-f0-9]{64}$/;

/** Split 'host/path' the way docker does: the first component is a registry only if it looks like a host. */
function splitDomain(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  let domain: string;
  let path: string;
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost')) {
    domain = DOCKER_HUB;
    path = name;
  } else {
    domain = name.slice(0, i);
    path = name.slice(i + 1);
  }
  if (domain === 'index.docker.io') domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes('/')) path = 'library/' + path;
  return { domain, path };
}

const bad = (input: string, why: string) => usageError(`invalid image reference "${input.slice(0, 200)}": ${why}`);

/**
 * Parse `[registry/]repo[:tag][@digest]` (with an optional `docker://` prefix).
 * Throws a one-line usage error for anything docker would reject.
 */
export function parseImageReference(input: string): ImageReference {
  let s = input.trim();
  if (s.startsWith('docker://')) s = s.slice('docker://'.length);
  if (s === '') throw bad(input, 'empty');
  if (ANCHORED_ID_RE.test(s)) throw bad(input, 'a 64-character hex string is an image ID, not a name; use name@sha256:<hex>');

  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at !== -1) {
    digest = s.slice(at + 1);
    s = s.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(input, `digest "${digest.slice(0, 80)}" is not sha256:<64 lowercase hex>`);
  }
  let tag: string | undefined;
  const lastSlash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(input, `tag "${tag.slice(0, 140)}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (s === '') throw bad(input, 'missing repository name');
  const { domain, path } = splitDomain(s);
  if (!DOMAIN_RE.test(domain)) throw bad(input, `registry "${domain.slice(0, 200)}" is not a valid host[:port]`);
  if (/[A-Z]/.test(path)) throw bad(input, 'repository name must be lowercase');
  if (!PATH_RE.test(path)) throw bad(input, `repository "${path.slice(0, 200)}" must be lowercase [a-z0-9] components separated by "/", ".", "_", "__" or "-"`);
  const name = `${domain}/${path}`;
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw bad(input, `repository name longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  return {
    registry: domain,
    apiHost: domain === DOCKER_HUB ? DOCKER_HUB_API_HOST : domain,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    name,
  };
}

/**
 * skopeo's `docker-archive:PATH:REF` naming (ParseNormalizedNamed + TagNameOnly): fully normalised name and
 * a tag defaulting to 'latest'. A digest is rejected, as skopeo does.
 */
export function normalizeTaggedName(nameAndOptionalTag: string): { name: string; tag: string } {
  const ref = parseImageReference(nameAndOptionalTag);
  if (ref.digest !== undefined || nameAndOptionalTag.includes('@'))
    throw usageError(`"${nameAndOptionalTag.slice(0, 200)}": a docker-archive name must be name[:tag], not a digest reference`);
  return { name: ref.name, tag: ref.tag ?? 'latest' };
}
