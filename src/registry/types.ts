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
  /** Largest manifest/index body accepted, in bytes (default MAX_MANIFEST_BYTES, 4 MiB like c/image). */
  maxManifestBytes?: number;
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

/** `chunkMinLength`: the POST response's `OCI-Chunk-Min-Length` (smallest PATCH chunk but the last), if sent. */
export type StartUploadResult = { mounted: true } | { mounted: false; location: string; chunkMinLength?: number };

/**
 * A chunk PATCH: accepted (next location; `range` the answer's `Range` end, when sent), 416 (the registry holds a
 * different offset: ask uploadStatus), or 413 (the chunk is too large for the registry: send smaller ones).
 */
export type UploadChunkResult = { location: string; rangeEnd?: number } | { outOfRange: true } | { tooLarge: true };

export interface RegistryClientApi {
  getManifest(ref: string): Promise<ManifestResponse>;
  headManifest(ref: string): Promise<ManifestHead | undefined>;
  getBlob(digest: string, opts?: BlobGetOptions): Promise<Readable>;
  headBlob(digest: string): Promise<{ size: number } | undefined>;
  startUpload(opts?: { mount?: string; from?: string }): Promise<StartUploadResult>;
  uploadBlobStream(location: string, body: Readable | Buffer, contentLength?: number): Promise<string>;
  uploadChunk(location: string, chunk: Buffer, start: number): Promise<UploadChunkResult>;
  uploadStatus(location: string): Promise<{ location: string; offset: number }>;
  finishUpload(location: string, digest: string): Promise<void>;
  cancelUpload(location: string): Promise<void>;
  putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<string>;
}
