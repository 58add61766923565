import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { createHash, type Hash } from 'node:crypto';
import { integrityError } from '../errors.js';
import { MAX_MANIFEST_BYTES } from '../manifest/media-types.js';
import { NixregError } from '../errors.js';

/**
 * Verification shared by every file-based source (docker-archive, OCI layout/archive): a blob stream is hashed
 * as it flows (no second pass) and fails at its end, before the consumer sees 'end', when digest or size differ.
 */
export function verifyStream(input: Readable, what: string, digest: string, size?: number): Readable {
  const v = new VerifyingStream(what, digest, size);
  input.on('error', (e) => v.destroy(e));
  // a consumer that stops early (destroys the verified stream) releases the file/connection behind it
  v.on('close', () => {
    if (!input.destroyed) input.destroy();
  });
  return input.pipe(v);
}

class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private n = 0;
  constructor(
    private readonly what: string,
    private readonly digest: string,
    private readonly size?: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.n += chunk.length;
    if (this.size !== undefined && this.n > this.size) return cb(integrityError(`${this.what}: size mismatch: expected ${this.size} bytes, got more`));
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = 'sha256:' + this.hash.digest('hex');
    if (this.size !== undefined && this.n !== this.size) return cb(integrityError(`${this.what}: size mismatch: expected ${this.size} bytes, got ${this.n}`));
    if (got !== this.digest) return cb(integrityError(`${this.what}: digest mismatch: expected ${this.digest}, got ${got}`));
    cb();
  }
}

/** Read a small document (manifest, index, config) fully, refusing absurd sizes instead of buffering them. */
export async function readSmall(r: AsyncIterable<Buffer>, what: string, limit = MAX_MANIFEST_BYTES * 16): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of r) {
    n += c.length;
    if (n > limit) throw new NixregError(`${what} is larger than ${limit} bytes; refusing to buffer it`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** JSON.parse with a one-line error naming the document. */
export function parseJson<T = unknown>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new NixregError(`${what} is not valid JSON`);
  }
}
