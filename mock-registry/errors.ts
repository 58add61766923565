import type { ServerResponse } from 'node:http';

/**
 * The error codes of the OCI Distribution Spec v1.1 (code-1 … code-14). Bodies always use the spec's JSON form
 * `{"errors":[{"code","message","detail"}]}` so clients can be tested against exactly what real registries send.
 */
export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS';

const MESSAGES: Record<ErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
};

export interface ErrorEntry {
  code: ErrorCode;
  message: string;
  detail?: unknown;
}

/** Thrown by handlers; the server turns it into a spec-shaped error response. */
export class RegistryError extends Error {
  readonly entries: ErrorEntry[];
  constructor(
    readonly status: number,
    code: ErrorCode,
    message?: string,
    detail?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? MESSAGES[code]);
    this.entries = [{ code, message: message ?? MESSAGES[code], ...(detail === undefined ? {} : { detail }) }];
  }
  /** Several errors in one body (e.g. one MANIFEST_BLOB_UNKNOWN per missing blob, as the spec asks). */
  static many(status: number, entries: ErrorEntry[]): RegistryError {
    const e = new RegistryError(status, entries[0]!.code, entries[0]!.message, entries[0]!.detail);
    e.entries.splice(0, 1, ...entries);
    return e;
  }
  get code(): ErrorCode {
    return this.entries[0]!.code;
  }
}

export const defaultMessage = (code: ErrorCode): string => MESSAGES[code];

export function sendError(res: ServerResponse, err: RegistryError, head: boolean): void {
  const body = Buffer.from(JSON.stringify({ errors: err.entries }));
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': body.length,
    ...err.headers,
  };
  res.writeHead(err.status, headers);
  res.end(head ? undefined : body);
}
