import { PassThrough, Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { detectCompression, ZstdDecompressStream } from '../compression/decompress.js';
import { NixregError } from '../errors.js';

/**
 * Decompress a layer by its magic bytes. Uses src/compression's detection and zstd decoder, but sniffs the head
 * itself: decompressByMagic (as of this writing) loses the data of blobs shorter than its 512-byte sniff window
 * (they end before it can unshift them back), and tiny blobs are common — e.g. the 32-byte gzip "empty layer".
 * Reported to the registry-client owner; switch back to decompressByMagic once that is fixed.
 */
export function decompressLayer(input: Readable): Readable {
  const out = new PassThrough({ highWaterMark: 128 << 10 });
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  (async () => {
    const head: Buffer[] = [];
    let n = 0;
    let ended = false;
    while (n < 512) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      head.push(r.value);
      n += r.value.length;
    }
    const kind = detectCompression(Buffer.concat(head));
    const rest = Readable.from(
      (async function* () {
        yield* head;
        if (!ended) for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })(),
      { objectMode: false },
    );
    const done = (err?: Error | null) => {
      if (!err) return;
      const zlib = typeof (err as { errno?: unknown }).errno === 'number';
      out.destroy(kind === 'gzip' && zlib ? new NixregError(`gzip layer is corrupt or truncated: ${err.message}`) : err);
    };
    if (kind === 'none') pipeline(rest, out, done);
    else pipeline(rest, kind === 'gzip' ? createGunzip() : new ZstdDecompressStream(), out, done);
  })().catch((e) => {
    input.destroy();
    out.destroy(e as Error);
  });
  return out;
}
