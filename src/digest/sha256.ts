import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { integrityError, usageError } from '../errors.js';

// node:crypto, not @noble/hashes: measured 1.98 GB/s vs 0.23 GB/s for sha256 on the project machines.

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Validate an OCI digest string (only sha256 is supported, like every registry in practice). */
export function parseDigest(d: string, what = 'digest'): string {
  if (!DIGEST_RE.test(d)) {
    if (/^sha512:/.test(d)) throw usageError(`${what} "${d.slice(0, 80)}" uses sha512, which nixreg does not support`);
    throw usageError(`${what} "${d.slice(0, 80)}" is not a valid digest; expected sha256:<64 lowercase hex>`);
  }
  return d;
}

export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
export const sha256Digest = (data: Buffer | string): string => 'sha256:' + sha256Hex(data);
export const hexOf = (digest: string): string => digest.slice(digest.indexOf(':') + 1);

/**
 * A pass-through stream that hashes and counts what flows through it, so verification costs no extra pass.
 * `digest()` is valid after 'finish'.
 */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private result?: string;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.result = 'sha256:' + this.hash.digest('hex');
    cb();
  }
  digest(): string {
    if (!this.result) throw new Error('HashingStream.digest() called before the stream finished');
    return this.result;
  }
}

/** Throws a one-line integrity error naming what was expected and what arrived. */
export function checkDigest(what: string, expected: string, got: string, expectedSize?: number, gotSize?: number): void {
  if (expected !== got) throw integrityError(`${what}: digest mismatch: expected ${expected}, got ${got}`);
  if (expectedSize !== undefined && gotSize !== undefined && expectedSize !== gotSize)
    throw integrityError(`${what}: size mismatch: expected ${expectedSize} bytes, got ${gotSize}`);
}
