import { createHash } from 'node:crypto';
import { describeSystemError, integrityError, NixregError } from '../errors.js';
import { abandonBody, errorCode, headerValue, sleep, type HttpResponse } from './transport.js';

/**
 * The body of a blob GET as verified chunks: size and sha256 are checked while streaming (the generator throws an
 * integrity error at the end on mismatch), and a reset mid-body is resumed like c/image >= 5.25: after a short
 * pause, `Range: bytes=N-`; a 206 must carry a matching Content-Range, a 200 (Range ignored) is re-read with the
 * delivered prefix skipped. A resume that made progress earns another one (up to MAX_RESUMES); resumes that
 * deliver nothing new are allowed MAX_IDLE_RESUMES times in a row (once for read timeouts, each of which costs a
 * whole --timeout), so a server failing at the same byte ends the download instead of looping. (c/image's "1 MiB or 60 s of progress" rule instead gave up on every small blob
 * hit twice: at a 20% fault rate that failed about one pull in ten.)
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
  /** Resumes allowed for one blob (default 10; the client derives it from --retry-times: 0 = none). */
  maxResumes?: number;
  log: (line: string) => void;
}

// Mid-body failures after which a Range request can continue the download.
const RESUMABLE_BODY_ERRORS = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const MAX_RESUMES = 10;
// A registry that ignores Range re-sends the prefix, so a flaky link can cut it at the same byte several times in
// a row: at a 20% fault rate, 3 idle resumes still failed ~1% of interrupted blobs; 5 (pauses doubling up to 4x)
// fail 0.03%, and a link that always breaks at the same byte still gives up within ~15 resume pauses.
const MAX_IDLE_RESUMES = 5;

export async function* verifiedBlobChunks(o: BlobStreamParams): AsyncGenerator<Buffer> {
  const { digest, what, first, start, size } = o;
  const hash = start === 0 ? createHash('sha256') : undefined;
  let res = first;
  let skip = o.firstSkip; // bytes of this response that were already delivered
  let delivered = start;
  let resumes = 0;
  let idleResumes = 0; // consecutive resumes after which nothing new arrived
  let deliveredAtResume = delivered;
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
      idleResumes = resumes > 0 && delivered === deliveredAtResume ? idleResumes + 1 : 0;
      const idleLimit = code === 'UND_ERR_BODY_TIMEOUT' ? 1 : MAX_IDLE_RESUMES;
      if (!RESUMABLE_BODY_ERRORS.has(code) || resumes >= (o.maxResumes ?? MAX_RESUMES) || idleResumes >= idleLimit)
        throw new NixregError(
          `${what}: download failed after ${delivered}${size !== undefined ? ` of ${size}` : ''} bytes: ${describeSystemError(err)}`,
          undefined,
          { cause: err },
        );
      resumes++;
      deliveredAtResume = delivered;
      o.log(`${what}: ${describeSystemError(err)} after ${delivered} bytes; resuming`);
      const pause = o.resumeDelayMs * 2 ** Math.min(idleResumes, 2);
      await sleep(pause + Math.random() * pause * 0.1);
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
    abandonBody(res);
    throw new NixregError(`${what}: registry answered a Range request with an unexpected Content-Range "${cr.slice(0, 80)}"`);
  }
  return 0;
}
