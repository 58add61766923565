import type { RouteKind } from './names.js';

/** What tests read back: a log line per request (never credentials) and running counters. */
export interface LogEntry {
  seq: number;
  time: string;
  method: string;
  /** path and query as requested (upload session ids included; no credentials are ever in URLs here) */
  url: string;
  route: RouteKind | 'unknown';
  name?: string;
  status: number;
  /** auth scheme the request carried and the user it resolved to; never the secret */
  auth?: 'none' | 'basic' | 'bearer';
  user?: string;
  /** fault kinds injected into this request */
  faults?: string[];
  /** request headers useful to client tests (Range, Content-Range, Content-Type, Accept, Content-Length) */
  headers: Record<string, string>;
  durationMs: number;
}

export interface Counters {
  requests: number;
  /** "<METHOD> <route>" → count, e.g. "GET blob", "PATCH upload", "HEAD manifest" */
  byRoute: Record<string, number>;
  /** status code → count */
  byStatus: Record<string, number>;
  heads: number;
  blobHeads: number;
  manifestHeads: number;
  blobGets: number;
  manifestGets: number;
  manifestPuts: number;
  blobUploadsStarted: number;
  blobUploadsCompleted: number;
  blobUploadsCancelled: number;
  monolithicUploads: number;
  mounts: number;
  mountFallbacks: number;
  patchRequests: number;
  patchBytes: number;
  /** bytes received by closing PUTs and monolithic POSTs */
  putBytes: number;
  blobBytesServed: number;
  tokensIssued: number;
  authFailures: number;
  faultsInjected: number;
}

export function newCounters(): Counters {
  return {
    requests: 0,
    byRoute: {},
    byStatus: {},
    heads: 0,
    blobHeads: 0,
    manifestHeads: 0,
    blobGets: 0,
    manifestGets: 0,
    manifestPuts: 0,
    blobUploadsStarted: 0,
    blobUploadsCompleted: 0,
    blobUploadsCancelled: 0,
    monolithicUploads: 0,
    mounts: 0,
    mountFallbacks: 0,
    patchRequests: 0,
    patchBytes: 0,
    putBytes: 0,
    blobBytesServed: 0,
    tokensIssued: 0,
    authFailures: 0,
    faultsInjected: 0,
  };
}

/** Zero every counter in place (tests keep a reference to the object). */
export function resetCounters(c: Counters): void {
  const fresh = newCounters();
  for (const k of Object.keys(fresh) as Array<keyof Counters>) (c as unknown as Record<string, unknown>)[k] = fresh[k];
}
