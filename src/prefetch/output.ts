/**
 * nix-prefetch-docker's stdout, byte for byte in layout and key order, but with values escaped properly
 * (the original interpolates them raw into a heredoc).
 */
export interface PrefetchResult {
  imageName: string;
  imageDigest: string;
  /** SRI sha256 of the docker-archive; with legacy output, the nix base32 form. */
  hash: string;
  finalImageName: string;
  finalImageTag: string;
  os: string;
  arch: string;
  variant?: string;
}

export type PrefetchFormat = 'nix' | 'json' | 'nix-expr';

/** A Nix string literal: escapes `"`, `\`, `${` and control characters (libexpr's lexer rules). */
export function nixString(s: string): string {
  return '"' + s.replace(/[\\"\n\r\t]|\$\{/g, (m) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t', '${': '\\${' })[m]!) + '"';
}

const hashKey = (legacy: boolean) => (legacy ? 'sha256' : 'hash');

export function formatNix(r: PrefetchResult, legacy = false, indent = '  '): string {
  return [
    '{',
    `${indent}imageName = ${nixString(r.imageName)};`,
    `${indent}imageDigest = ${nixString(r.imageDigest)};`,
    `${indent}${hashKey(legacy)} = ${nixString(r.hash)};`,
    `${indent}finalImageName = ${nixString(r.finalImageName)};`,
    `${indent}finalImageTag = ${nixString(r.finalImageTag)};`,
    '}',
  ].join('\n');
}

export function formatJson(r: PrefetchResult, legacy = false): string {
  const o = {
    imageName: r.imageName,
    imageDigest: r.imageDigest,
    [hashKey(legacy)]: r.hash,
    finalImageName: r.finalImageName,
    finalImageTag: r.finalImageTag,
  };
  return JSON.stringify(o, null, 2);
}

/** A ready-to-paste `dockerTools.pullImage { ... }` call (os/arch spelled out so the pin is unambiguous). */
export function formatNixExpr(r: PrefetchResult, legacy = false): string {
  const lines = [
    'dockerTools.pullImage {',
    `  imageName = ${nixString(r.imageName)};`,
    `  imageDigest = ${nixString(r.imageDigest)};`,
    `  ${hashKey(legacy)} = ${nixString(r.hash)};`,
    `  finalImageName = ${nixString(r.finalImageName)};`,
    `  finalImageTag = ${nixString(r.finalImageTag)};`,
    `  os = ${nixString(r.os)};`,
    `  arch = ${nixString(r.arch)};`,
  ];
  if (r.variant) lines.push(`  variant = ${nixString(r.variant)};`);
  lines.push('}');
  return lines.join('\n');
}

/** `--platform all`: one entry per platform, keyed by os/arch[/variant]. */
export function formatMulti(results: PrefetchResult[], format: PrefetchFormat, legacy = false): string {
  const key = (r: PrefetchResult) => [r.os, r.arch, r.variant].filter(Boolean).join('/');
  if (format === 'json') {
    const o: Record<string, unknown> = {};
    for (const r of results) o[key(r)] = JSON.parse(formatJson(r, legacy));
    return JSON.stringify(o, null, 2);
  }
  const body = results.map((r) => {
    const inner = format === 'nix-expr' ? formatNixExpr(r, legacy) : formatNix(r, legacy);
    return `  ${nixString(key(r))} = ${inner.replace(/\n/g, '\n  ')};`;
  });
  return ['{', ...body, '}'].join('\n');
}
