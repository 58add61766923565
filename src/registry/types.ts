import type { Readable } from 'node:stream';

export interface Credentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** 'docker.io', 'quay.io', '127.0.0.1:5000', ... (docker.io is spoken to at registry-1.docker.io). */
  registry: string;
  /** Repository path, e.g. 'library/nginx'. */
  repository: string;
  /** Default true. false = allow plain http and unverified TLS (like skopeo --src-tls-verify=false). */
  tlsVerify?: boolean;
  /** Explicit credentials (--creds); win over every auth file. */
  creds?: Credentials;
  /** --authfile; otherwise the c/image search order (see auth/credentials.ts). */
  authfile?: string;
  /** Directory with *.crt CAs and *.cert/*.key client pairs (like skopeo --cert-dir). */
  certDir?: string;
  userAgent?: string;
  /**
   * Retries for 429/408/5xx/resets: times (default 4), backoff cap (default 30 s), first delay (default 1 s, also
   * the pause before a blob resume), and the total time budget for one request's retries (default 5 min).
   */
  retry?: { times?: number; maxDelayMs?: number; baseDelayMs?: number; totalMs?: number };
  /** Connect timeout and per-read (headers / body idle) timeout in ms (default 60 s). */
  timeoutMs?: number;
  /** Debug log sink; never receives secrets. */
  log?: (line: string) => void;
  /** Request pull,push tokens (for push). */
  pushScope?: boolean;
  /** Environment to read credential locations from (tests); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface ManifestResponse {
  bytes: Buffer;
  /** Content-Type without parameters. */
  mediaType: string;
  /** sha256 of `bytes`. */
  digest: string;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface BlobGetOptions {
  /** Expected size (from the descriptor); checked while streaming. */
  size?: number;
  /** Start at this byte offset (Range request); verification then covers only size checks, not sha256. */
  offset?: number;
}

export type StartUploadResult = { mounted: true } | { mounted: false; location: string };

export interface RegistryClientApi {
  getManifest(ref: string): Promise<ManifestResponse>;
  headManifest(ref: string): Promise<ManifestHead | undefined>;
  getBlob(digest: string, opts?: BlobGetOptions): Promise<Readable>;
  headBlob(digest: string): Promise<{ size: number } | undefined>;
  startUpload(opts?: { mount?: string; from?: string }): Promise<StartUploadResult>;
  uploadBlobStream(location: string, body: Readable, contentLength?: number): Promise<string>;
  finishUpload(location: string, digest: string): Promise<void>;
  cancelUpload(location: string): Promise<void>;
  putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<string>;
}
