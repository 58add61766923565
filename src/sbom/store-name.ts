/**
 * Name and version of a store path, split as Nix's `builtins.parseDrvName` splits a derivation name: the version
 * starts after the first `-` that is followed by a character other than a letter
 * (https://nix.dev/manual/nix/latest/language/builtins.html#builtins-parseDrvName).
 */
export function parseDrvName(s: string): { name: string; version: string } {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '-' && i + 1 < s.length && !/[A-Za-z]/.test(s[i + 1]!)) return { name: s.slice(0, i), version: s.slice(i + 1) };
  }
  return { name: s, version: '' };
}

/** `/nix/store/<32 chars>-hello-2.12` → `hello-2.12` (the whole base name when there is no hash part). */
export function storePathName(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return /^[0-9a-z]{32}-/.test(base) ? base.slice(33) : base;
}

/** The 32-character hash part of a store path ('' when there is none). */
export function storePathHash(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return /^[0-9a-z]{32}-/.test(base) ? base.slice(0, 32) : '';
}

/**
 * A package URL of type nix: `pkg:nix/<name>@<version>`, name and version percent-encoded as the purl
 * specification asks (https://github.com/package-url/purl-spec/blob/main/PURL-SPECIFICATION.rst).
 */
export function nixPurl(name: string, version: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `pkg:nix/${enc(name)}${version ? '@' + enc(version) : ''}`;
}
