import { describeSystemError, fileError, NixregError, systemErrorCode } from '../errors.js';

/** System error codes that mean the file being written failed (full disk, quota, read-only, I/O), not the input. */
const WRITE_FAILURES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG', 'EIO', 'EACCES', 'EPERM']);

/**
 * `err` as one line naming the file being written ("cannot write PATH: no space left on device; …") when it is
 * such a failure; any other error is returned as it is.
 */
export function asWriteError(path: string, err: unknown): unknown {
  if (err instanceof NixregError) return err;
  const code = systemErrorCode(err);
  return code !== undefined && WRITE_FAILURES.has(code) ? fileError(`cannot write ${path}: ${describeSystemError(err)}`, err) : err;
}
