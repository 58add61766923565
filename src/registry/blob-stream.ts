import { createHash } from 'node:crypto';
import { describeSystemError, integrityError, NixregError } from '../errors.js';
import { errorCode, headerValue, sleep, type HttpResponse } from './transport.js';

/**
 * The body of a blob GET as verified chunks: size and sha256 are checked while streaming (the generator throws an
 * integrity error at the end on mismatch), and a reset mid-body is resumed like c/image >= 5.25: after a short
 * pause, `Range: bytes=N-`; a 206 must carry a matching Content-Range, a 200 (Range ignored) is re-read with the
 * delivered prefix skipped. Resumes happen on the first failure, then only after 1 MiB or 60 s of progress.
 */
export interface BlobStreamParams {
  digest: string;
  /** 'blob registry/repo@sha256:…', for messages. */
  what: string;
  first: HttpResponse;
  /** Bytes at the start of `first` that the caller does not want (a 200 to a Range request). */
  firstSkip: number;
  /** Offset the caller asked for; sha256 can only be verified from 0. */
  start: number;
  size?: number;
  /** Re-request from `offset` (adds the Range header). */
  open: (offset: number) => Promise<HttpResponse>;
  resumeDelayMs: number;
  log: (line: string) => void;
}

// Mid-body failures after which a Range request can continue the download.
const RESUMABLE_BODY_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_BODY_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH']);
const MAX_RESUMES = 5;
const RESUME_PROGRESS_BYTES = 1 << 20;
const RESUME_PROGRESS_MS = 60_000;

export async function* verifiedBlobChunks(o: BlobStreamParams): AsyncGenerator<Buffer> {
  const { digest, what, first, start, size } = o;
  const hash = start === 0 ? createHash('sha256') : undefined;
  let res = first;
  let skip = o.firstSkip; // bytes of this response that were already delivered
  let delivered = start;
  let resumes = 0;
  let lastResumeAt = { bytes: delivered, time: Date.now() };
  for (;;) {
    try {
      for await (const raw of res.body) {
        let chunk = raw as Buffer;
        if (skip > 0) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        delivered += chunk.length;
        if (size !== undefined && delivered > size) throw integrityError(`${what}: size mismatch: expected ${size} bytes, got more`);
        hash?.update(chunk);
        yield chunk;
      }
      break;
    } catch (err) {
      if (err instanceof NixregError) throw err;
      const code = errorCode(err) ?? '';
      const progressed = delivered - lastResumeAt.bytes >= RESUME_PROGRESS_BYTES || Date.now() - lastResumeAt.time >= RESUME_PROGRESS_MS;
      if (!RESUMABLE_BODY_ERRORS.has(code) || resumes >= MAX_RESUMES || (resumes > 0 && !progressed))
        throw new NixregError(`${what}: download failed after ${delivered} bytes: ${describeSystemError(err)}`, undefined, { cause: err });
      resumes++;
      lastResumeAt = { bytes: delivered, time: Date.now() };
      o.log(`${what}: ${describeSystemError(err)} after ${delivered} bytes; resuming`);
      await sleep(o.resumeDelayMs + Math.random() * o.resumeDelayMs * 0.1);
      res = await o.open(delivered);
      if (res.status === 206) skip = checkContentRange(res, delivered, what);
      else {
        o.log(`${what}: registry ignored Range; re-reading and skipping ${delivered} bytes`);
        skip = delivered;
      }
    }
  }
  if (size !== undefined && delivered !== size) throw integrityError(`${what}: size mismatch: expected ${size} bytes, got ${delivered}`);
  if (hash) {
    const got = 'sha256:' + hash.digest('hex');
    if (got !== digest) throw integrityError(`${what}: digest mismatch: expected ${digest}, got ${got}`);
  }
}

/** Validate a 206's Content-Range against the offset asked for; returns the bytes to skip (0). */
export function checkContentRange(res: HttpResponse, offset: number, what: string): number {
  const cr = headerValue(res.headers, 'content-range') ?? '';
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim());
  if (!m || Number(m[1]) !== offset || (m[3] !== '*' && Number(m[2]) + 1 !== Number(m[3]))) {
    res.body.destroy();
    throw new NixregError(`${what}: registry answered a Range request with an unexpected Content-Range "${cr.slice(0, 80)}"`);
  }
  return 0;
}
