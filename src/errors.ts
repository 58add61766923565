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

/**
 * Stable machine-readable error codes, beside the exit status. Scripts and library callers branch on `code`;
 * the message wording may change, the codes do not.
 */
export const ErrorCode = {
  failure: 'E_FAILURE', // generic runtime failure that fits no narrower code
  usage: 'E_USAGE', // bad flags, malformed references/digests, bad input files
  auth: 'E_AUTH', // 401/403 after trying the credentials we found
  notFound: 'E_NOT_FOUND', // manifest, blob, tag or platform does not exist
  integrity: 'E_INTEGRITY', // digest, diffID, size or --sha256 mismatch
  network: 'E_NETWORK', // connection refused/reset/timed out, unknown host, TLS, proxy
  noSpace: 'E_NO_SPACE', // the disk or quota is full
  permission: 'E_PERMISSION', // the operating system denied access to a file
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
export const errorCodes: readonly ErrorCodeValue[] = Object.values(ErrorCode);

const codeByExit: Record<ExitCodeValue, ErrorCodeValue> = {
  [ExitCode.ok]: ErrorCode.failure,
  [ExitCode.failure]: ErrorCode.failure,
  [ExitCode.usage]: ErrorCode.usage,
  [ExitCode.auth]: ErrorCode.auth,
  [ExitCode.notFound]: ErrorCode.notFound,
  [ExitCode.integrity]: ErrorCode.integrity,
};

const NETWORK_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'NIXREG_PROXY_DROPPED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** TLS trust failures are network failures, but trying again gives the same answer. */
const NOT_RETRYABLE_SYSTEM_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The operating-system / undici error code (ECONNREFUSED, ENOSPC, ...) found on an error or its causes. */
export function systemErrorCode(err: unknown): string | undefined {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e != null && typeof e === 'object' && depth < 8; depth++) {
    if (typeof e.code === 'string' && !(e instanceof NixregError)) return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

function codeFromCause(cause: unknown): { code: ErrorCodeValue; retryable: boolean } | undefined {
  if (cause instanceof NixregError) return { code: cause.code, retryable: cause.retryable };
  const sys = systemErrorCode(cause);
  if (sys === undefined) return undefined;
  if (NETWORK_SYSTEM_CODES.has(sys)) return { code: ErrorCode.network, retryable: !NOT_RETRYABLE_SYSTEM_CODES.has(sys) };
  if (sys === 'ENOSPC' || sys === 'EDQUOT') return { code: ErrorCode.noSpace, retryable: false };
  if (sys === 'EACCES' || sys === 'EPERM') return { code: ErrorCode.permission, retryable: false };
  return undefined;
}

export interface NixregErrorOptions {
  cause?: unknown;
  /** Overrides the code derived from the exit status and the cause. */
  code?: ErrorCodeValue;
  /** Whether trying the same operation again may succeed; by default true only for network failures. */
  retryable?: boolean;
}

export class NixregError extends Error {
  readonly exitCode: ExitCodeValue;
  /** Stable string code, one of `errorCodes`. */
  readonly code: ErrorCodeValue;
  readonly retryable: boolean;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.failure, options?: NixregErrorOptions) {
    super(oneLine(message), options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'NixregError';
    this.exitCode = exitCode;
    // A narrower exit status (usage, auth, ...) names the failure; a generic one takes its code from the cause.
    const fromCause = exitCode === ExitCode.failure ? codeFromCause(options?.cause) : undefined;
    this.code = options?.code ?? fromCause?.code ?? codeByExit[exitCode] ?? ErrorCode.failure;
    this.retryable = options?.retryable ?? (options?.code === undefined ? fromCause?.retryable : undefined) ?? this.code === ErrorCode.network;
  }
}

export const usageError = (msg: string) => new NixregError(msg, ExitCode.usage);
export const integrityError = (msg: string) => new NixregError(msg, ExitCode.integrity);
export const notFoundError = (msg: string) => new NixregError(msg, ExitCode.notFound);
export const authError = (msg: string) => new NixregError(msg, ExitCode.auth);
export const networkError = (msg: string, cause?: unknown) =>
  new NixregError(msg, ExitCode.failure, { cause, code: ErrorCode.network, retryable: codeFromCause(cause)?.retryable ?? true });
/** A failure writing or reading a file, coded from the system error (E_NO_SPACE, E_PERMISSION, ...). */
export const fileError = (msg: string, cause: unknown) => new NixregError(msg, ExitCode.failure, { cause });

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
  if (err instanceof NixregError) return err.message; // its `code` is nixreg's own, not a system error code
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
