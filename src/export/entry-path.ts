/**
 * Entry names of a layer, reduced to one canonical relative form ("usr/bin/env", no leading "/" or "./", no
 * trailing "/", no empty or "." components), or refused.
 *
 * Decisions, matching Docker's layer applier (pkg/archive ApplyLayer cleans each name and joins it under the root):
 * a leading "/" and "./" are normalised away, because real images contain both spellings of the same path. Any ".."
 * component is an error, even one that would stay inside the root ("a/../b"): no honest layer writer emits one,
 * and refusing them outright leaves no room for a traversal bug. The same rules apply to hard-link targets.
 */

export class UnsafePathError extends Error {}

export function normaliseEntryPath(raw: string): string {
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafePathError('has a ".." component (path traversal)');
    parts.push(part);
  }
  return parts.join('/');
}

/** Proper ancestors of a normalised path, nearest last: "a/b/c" → ["a", "a/b"]. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}

export function dirnameOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
