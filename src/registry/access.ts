import type { Credentials, RegistryClientOptions } from './types.js';

/**
 * The registry options every command takes (auth, TLS, retries, limits: pull's and skopeo's flags), and their
 * mapping onto RegistryClientOptions, kept in one place so pull, push and registry copies cannot drift.
 */
export interface RegistryAccess {
  tlsVerify?: boolean;
  creds?: Credentials;
  authfile?: string;
  certDir?: string;
  /** Retries / read timeout (--retry-times, --retry-max-time, --timeout). */
  retry?: RegistryClientOptions['retry'];
  timeoutMs?: number;
  /** --max-manifest-size (default 4 MiB). */
  maxManifestBytes?: number;
  log?: (line: string) => void;
  /** Environment for credential lookup (tests). */
  env?: NodeJS.ProcessEnv;
}

/** The client options for `access`, leaving out what was not given (so the client's defaults apply). */
export function clientOptions(access: RegistryAccess): Partial<RegistryClientOptions> {
  return {
    ...(access.tlsVerify !== undefined ? { tlsVerify: access.tlsVerify } : {}),
    ...(access.creds ? { creds: access.creds } : {}),
    ...(access.authfile ? { authfile: access.authfile } : {}),
    ...(access.certDir ? { certDir: access.certDir } : {}),
    ...(access.retry ? { retry: access.retry } : {}),
    ...(access.timeoutMs ? { timeoutMs: access.timeoutMs } : {}),
    ...(access.maxManifestBytes ? { maxManifestBytes: access.maxManifestBytes } : {}),
    ...(access.log ? { log: access.log } : {}),
    ...(access.env ? { env: access.env } : {}),
  };
}
