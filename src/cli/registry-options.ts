import type { Credentials } from '../registry/types.js';
import { usageError } from '../errors.js';

/** `--creds user:password` (split at the first colon, like skopeo). The password is never echoed in errors. */
export function parseCreds(creds: string | undefined): Credentials | undefined {
  if (creds === undefined) return undefined;
  const i = creds.indexOf(':');
  if (i <= 0) throw usageError('--creds must be user:password');
  return { username: creds.slice(0, i), password: creds.slice(i + 1) };
}
