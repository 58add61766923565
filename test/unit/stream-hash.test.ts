import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StreamHash } from '../../src/digest/stream-hash.js';
import { nativeDecoder, nativeSha256 } from '../../src/native/codecs.js';

/**
 * StreamHash: the thread-pool sha256 of the native addon (Node's own OpenSSL) or node:crypto inline; the same
 * digests either way, in chunk order, whatever the batching. Run with NIXREG_NO_NATIVE=1 too (the fallback).
 */
describe('StreamHash', () => {
  it('uses the native sha256 exactly when the addon was built with Node\'s OpenSSL headers', () => {
    const headers = existsSync(join(dirname(process.execPath), '../include/node/openssl/evp.h'));
    expect(!!nativeSha256()).toBe(!!nativeDecoder('zstd') && headers);
  });

  it('equals node:crypto for many small chunks queued while a batch is hashed, and for none', async () => {
    const chunks = Array.from({ length: 3000 }, (_, i) => randomBytes(1 + ((i * 7919) % 20000)));
    const h = new StreamHash();
    for (const c of chunks) h.update(c);
    const want = createHash('sha256');
    for (const c of chunks) want.update(c);
    expect(await h.digest()).toBe('sha256:' + want.digest('hex'));
    expect(await new StreamHash().digest()).toBe('sha256:' + createHash('sha256').digest('hex'));
  });

  it('chunks added across awaits (a stream arriving slowly) still hash in order', async () => {
    const chunks = Array.from({ length: 200 }, () => randomBytes(65536));
    const h = new StreamHash();
    for (const [i, c] of chunks.entries()) {
      h.update(c);
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await h.digest()).toBe('sha256:' + createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
  });
});
