import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { RouteKind } from './names.js';
import type { ErrorCode } from './errors.js';

/**
 * Fault injection for client tests. Rules are matched per route kind and method; whether a matching rule fires is
 * decided by `skip` / `times` counters and, when `probability` < 1, by a seeded RNG, so a given sequence of
 * requests always meets the same faults.
 *
 * kinds:
 *  - status: answer with `status` (429 + Retry-After, 500, 502, 503, ...) instead of handling the request; with
 *    `codes`, the body is the spec's JSON error list with those codes (e.g. the 400 DIGEST_INVALID +
 *    MANIFEST_BLOB_UNKNOWN distribution 2.8 answers while another push rewrites a blob link)
 *  - reset: send headers and `afterBytes` bytes of the body (default: half), then reset the TCP connection;
 *    on requests without a manifest/blob body to send (HEAD, uploads, token, ...) reset before answering
 *  - drip: send the body `dripBytes` at a time with `dripIntervalMs` pauses
 *  - flip: invert one byte of the body (at `afterBytes`, default the middle); headers still claim the true digest
 *  - ignore-range: blob GET answers 200 with the whole body although the client sent `Range`
 *  - stall: stop for `stallMs` (default: until the client gives up) before the headers, or after `afterBytes`
 *    bytes of the body when that is set
 *  - truncate: like reset, but the connection is closed cleanly (FIN) after `afterBytes` bytes (default: half)
 *    although Content-Length promised the whole body; only on GET manifest/blob bodies
 */
export type FaultKind = 'status' | 'reset' | 'drip' | 'flip' | 'ignore-range' | 'stall' | 'truncate';

export interface FaultRule {
  kind: FaultKind;
  /** route kinds it applies to (default: all) */
  route?: RouteKind | RouteKind[];
  /** HTTP methods it applies to (default: all) */
  method?: string | string[];
  /** only requests with (true) or without (false) a Range header (default: both) */
  ranged?: boolean;
  /** only requests with (true) or without (false) a `mount=` query, i.e. cross-repository mounts (default: both) */
  mount?: boolean;
  /** chance that a matching request gets the fault (default 1), drawn from the seeded RNG */
  probability?: number;
  /** let the first N matching requests through */
  skip?: number;
  /** fire at most N times */
  times?: number;
  status?: number;
  /** status faults: answer with a JSON error body carrying these codes (default: a plain-text body) */
  codes?: ErrorCode[];
  /** Retry-After seconds for status faults (default 1 for 429, none otherwise) */
  retryAfter?: number;
  /** status faults: extra response headers (e.g. Docker Hub's RateLimit-Limit / RateLimit-Remaining) */
  headers?: Record<string, string>;
  afterBytes?: number;
  dripBytes?: number;
  dripIntervalMs?: number;
  stallMs?: number;
}

export interface FaultOptions {
  seed?: number;
  rules: FaultRule[];
}

/** mulberry32: tiny, fast, good enough to make fault sequences reproducible from a seed */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const asList = <T>(v: T | T[] | undefined): T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

export class FaultInjector {
  private readonly random: () => number;
  private readonly state: Array<{ rule: FaultRule; matched: number; fired: number }>;

  constructor(opts: FaultOptions = { rules: [] }) {
    this.random = seededRandom(opts.seed ?? 1);
    this.state = opts.rules.map((rule) => ({ rule, matched: 0, fired: 0 }));
  }

  /** Rules that fire for this request, in rule order. */
  pick(route: RouteKind, method: string, ranged = false, mount = false): FaultRule[] {
    const out: FaultRule[] = [];
    for (const s of this.state) {
      const r = s.rule;
      if (r.route && !asList(r.route)!.includes(route)) continue;
      if (r.method && !asList(r.method)!.some((m) => m.toUpperCase() === method)) continue;
      if (r.ranged !== undefined && r.ranged !== ranged) continue;
      if (r.mount !== undefined && r.mount !== mount) continue;
      s.matched++;
      if (s.matched <= (r.skip ?? 0)) continue;
      if (r.times !== undefined && s.fired >= r.times) continue;
      if ((r.probability ?? 1) < 1 && this.random() >= r.probability!) continue;
      s.fired++;
      out.push(r);
    }
    return out;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait `ms` (forever if undefined) or until the client goes away. */
export function stall(res: ServerResponse, ms?: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = ms === undefined ? undefined : setTimeout(done, ms);
    res.once('close', done);
  });
}

/**
 * Send a response body (headers already written), applying body faults. Without faults it is a plain pipe.
 * `total` is the body length, used for "middle of the body" defaults.
 */
export async function sendBody(res: ServerResponse, src: Readable, total: number, faults: FaultRule[]): Promise<number> {
  const reset = faults.find((f) => f.kind === 'reset') ?? faults.find((f) => f.kind === 'truncate');
  // a reset sends RST (ECONNRESET at the client); a truncation a clean FIN after the short body
  const cut = (): void => {
    if (reset?.kind === 'truncate') res.socket?.end();
    else res.socket?.resetAndDestroy();
  };
  const drip = faults.find((f) => f.kind === 'drip');
  const flip = faults.find((f) => f.kind === 'flip');
  const midStall = faults.find((f) => f.kind === 'stall' && f.afterBytes !== undefined);
  const resetAt = reset ? (reset.afterBytes ?? Math.floor(total / 2)) : Infinity;
  const flipAt = flip ? Math.min(flip.afterBytes ?? Math.floor(total / 2), Math.max(total - 1, 0)) : -1;
  const stallAt = midStall ? midStall.afterBytes! : Infinity;
  let stalled = false;
  // 64 KiB writes: a client that hangs up stops the count (blobBytesServed) within one piece, not one stored blob
  const piece = drip ? Math.max(1, drip.dripBytes ?? 1024) : 64 * 1024;
  let pos = 0;
  const write = (b: Buffer) =>
    new Promise<void>((resolve) => {
      if (res.destroyed) return resolve();
      if (res.write(b)) resolve();
      else {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      }
    });
  try {
    if (resetAt <= 0 || stallAt <= 0) {
      res.flushHeaders();
      await new Promise<void>((r) => res.write(Buffer.alloc(0), () => r()));
      if (resetAt <= 0) {
        cut();
        src.destroy();
        return 0;
      }
      stalled = true;
      await stall(res, midStall!.stallMs);
      if (res.destroyed) return 0;
    }
    for await (const c of src) {
      let chunk = c as Buffer;
      if (flipAt >= pos && flipAt < pos + chunk.length) {
        chunk = Buffer.from(chunk); // never mutate the stored bytes
        chunk[flipAt - pos] ^= 0xff;
      }
      for (let off = 0; off < chunk.length; ) {
        let n = Math.min(chunk.length - off, piece);
        if (pos < resetAt && pos + n >= resetAt) n = resetAt - pos;
        if (!stalled && pos < stallAt && pos + n >= stallAt) n = stallAt - pos;
        if (drip && pos > 0 && n > 0) await sleep(drip.dripIntervalMs ?? 50);
        if (n > 0) await write(chunk.subarray(off, off + n));
        off += n;
        pos += n;
        if (res.destroyed) return pos;
        if (pos >= resetAt) {
          // wait until the prefix is handed to the kernel, then RST so the client sees ECONNRESET mid-body
          await new Promise<void>((r) => res.write(Buffer.alloc(0), () => r()));
          cut();
          src.destroy();
          return pos;
        }
        if (!stalled && pos >= stallAt) {
          stalled = true;
          await stall(res, midStall!.stallMs);
          if (res.destroyed) return pos;
        }
      }
    }
    if (pos >= resetAt) {
      cut();
      return pos;
    }
    res.end();
  } catch {
    res.destroy();
  }
  return pos;
}

/**
 * The fault kinds of nixreg's resilience figures (README, Reliability) as rule sets at a per-request rate, shared by
 * test/resilience and bench/soak.mjs so the CI suite and the soak table measure the same thing.
 */
export interface FaultKindSpec {
  name: string;
  /** rules for run number `run` (the 5xx kind rotates 500/502/503) */
  rules: (rate: number, run: number) => FaultRule[];
  /** Range honoured: interrupted blobs must resume, so (almost) nothing is fetched twice */
  resumes?: boolean;
  /** the fault only slows requests down: nothing to retry */
  slowOnly?: boolean;
}

const PULL_ROUTES: FaultRule['route'] = ['manifest', 'blob'];

/** The fault kinds of the resilience figures, for pulls: every request to a manifest or blob is a candidate. */
export const PULL_FAULTS: FaultKindSpec[] = [
  { name: '429 + Retry-After', rules: (p) => [{ kind: 'status', status: 429, retryAfter: 1, probability: p, route: PULL_ROUTES }] },
  { name: '500/502/503', rules: (p, run) => [{ kind: 'status', status: [500, 502, 503][run % 3]!, probability: p, route: PULL_ROUTES }] },
  { name: 'reset mid-body', rules: (p) => [{ kind: 'reset', probability: p, route: PULL_ROUTES, method: 'GET' }], resumes: true },
  { name: 'truncated body', rules: (p) => [{ kind: 'truncate', probability: p, route: PULL_ROUTES, method: 'GET' }], resumes: true },
  { name: 'slow drip', rules: (p) => [{ kind: 'drip', probability: p, route: PULL_ROUTES, dripBytes: 8192, dripIntervalMs: 2 }], slowOnly: true },
  {
    name: 'Range ignored',
    rules: (p) => [
      { kind: 'reset', probability: p, route: 'blob', method: 'GET' },
      { kind: 'ignore-range', route: 'blob' },
    ],
  },
  {
    name: 'stall > timeout',
    rules: (p) => [
      { kind: 'stall', probability: p / 2, route: PULL_ROUTES }, // before the headers
      { kind: 'stall', probability: p / 2, route: 'blob', method: 'GET', afterBytes: 4096 }, // mid-body
    ],
    resumes: true,
  },
];

/** Push: POST/PATCH/PUT uploads, HEAD blobs and PUT manifests fail (body faults do not apply to requests). */
const PUSH_ROUTES: FaultRule['route'] = ['upload', 'blob', 'manifest'];
export const PUSH_FAULTS: FaultKindSpec[] = [
  { name: '429 + Retry-After', rules: (p) => [{ kind: 'status', status: 429, retryAfter: 1, probability: p, route: PUSH_ROUTES }] },
  { name: '500/502/503', rules: (p, run) => [{ kind: 'status', status: [500, 502, 503][run % 3]!, probability: p, route: PUSH_ROUTES }] },
  { name: 'connection reset', rules: (p) => [{ kind: 'reset', probability: p, route: PUSH_ROUTES }] },
  { name: 'stall > timeout', rules: (p) => [{ kind: 'stall', probability: p, route: PUSH_ROUTES }] },
];
