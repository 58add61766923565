/**
 * nixreg's one error type. Every failure a user can hit is turned into a NixregError whose message is a
 * single line: what failed, where, and what to do. The CLI prints `nixreg: <message>` and exits with `exitCode`;
 * anything else that escapes is a bug and is reported as such (still one line, no stack unless NIXREG_DEBUG=1).
 */
export const ExitCode = {
  ok: 0,
  failure: 1, // generic runtime failure (network, registry error, verification)
  usage: 2, // bad flags, malformed references/digests, bad input files
  auth: 3, // 401/403 after trying the credentials we found
  notFound: 4, // manifest, blob, tag or platform does not exist
  integrity: 5, // digest, diffID, size or --sha256 mismatch
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class NixregError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.failure, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.name = 'NixregError';
    this.exitCode = exitCode;
  }
}

export const usageError = (msg: string) => new NixregError(msg, ExitCode.usage);
export const integrityError = (msg: string) => new NixregError(msg, ExitCode.integrity);
export const notFoundError = (msg: string) => new NixregError(msg, ExitCode.notFound);
export const authError = (msg: string) => new NixregError(msg, ExitCode.auth);

/**
 * Collapse line breaks (\n, a lone \r, U+2028/2029) so every message stays on one line, and show other control
 * characters as '?': messages quote registry answers and user input, which must not move the cursor or recolour
 * the terminal.
 */
export function oneLine(s: string): string {
  return s
    .replace(/\s*[\r\n\u2028\u2029]\s*/g, ' ')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?')
    .trim();
}

/** Describe a low-level error (ECONNREFUSED, TLS, ...) in words a user understands. */
export function describeSystemError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: unknown };
  const code = e?.code ?? (e?.cause as { code?: string } | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'server stopped responding (read timeout)';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS certificate not trusted (${code}); use --cert-dir with the registry's CA, or --tls-verify=false`;
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
      return 'no such file or directory';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a parent of it is not a directory';
    case 'ENOSPC':
      return 'no space left on device; free some space there or write to another filesystem';
    case 'EDQUOT':
      return 'disk quota exceeded; free some space there or write to another filesystem';
    case 'ESPIPE':
      return 'cannot seek in it (a pipe or device); write to a regular file, or to - for stdout';
    case 'EROFS':
      return 'read-only file system; write to another location';
    case 'NIXREG_PROXY_DROPPED': // src/registry/transport.ts
      return 'the proxy closed the connection instead of opening a tunnel; check https_proxy / http_proxy / no_proxy';
    default: {
      const tunnel = /Proxy response \((\d+)\) !== 200 when HTTP Tunneling/.exec(e?.message ?? '');
      if (tunnel) return `the proxy refused the connection (HTTP ${tunnel[1]}); check https_proxy / no_proxy`;
      return oneLine(e?.message ?? String(err)) + (code ? ` (${code})` : '');
    }
  }
}
