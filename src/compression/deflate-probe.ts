import { createHash } from 'node:crypto';

/**
 * A fixed 1.1 MiB input that drives every part of zlib's deflate that decides output bytes: the match finder's hash
 * on text (many short matches), runs longer than the 258-byte maximum match, incompressible bytes (stored-block
 * choices), zeros, low-entropy binary, and enough input past the 32 KiB window that it slides many times and blocks
 * end where the symbol buffer fills. Two deflate implementations that give the same bytes for it at a level are
 * taken to give the same bytes at that level for any input (see gzip-encoder.ts for why the check exists).
 */
export function deflateProbeInput(): Buffer {
  let x = 0x9e3779b9;
  const next = () => {
    // xorshift32: deterministic and the same in every JavaScript engine
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const words = 'the of and to nix store lib bin share include return const static void int char license copyright software'.split(' ');
  const text = (n: number) => {
    const parts: string[] = [];
    let len = 0;
    while (len < n) {
      const w = words[next() % words.length] ?? 'x';
      const sep = next() % 11 === 0 ? `\n${' '.repeat(next() % 6)}` : ' ';
      parts.push(w, sep);
      len += w.length + sep.length;
    }
    return Buffer.from(parts.join('').slice(0, n));
  };
  const bytes = (n: number, mask: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = next() & mask;
    return b;
  };
  const phrase = text(1000);
  return Buffer.concat([
    text(256 << 10),
    Buffer.concat(Array.from({ length: 128 }, () => phrase)),
    bytes(128 << 10, 0xff),
    Buffer.alloc(64 << 10),
    bytes(256 << 10, 0x0f),
    text(256 << 10),
  ]);
}

/**
 * sha256 of the raw deflate stream (windowBits 15, memLevel 8, default strategy) of deflateProbeInput() at each
 * level 1–9, as pako 3.0.3 with its classic hash (the pinned reference encoder) writes it. test/unit/deflate-probe.test.ts recomputes
 * every entry with pako, so the table cannot drift from the encoder it describes.
 */
export const PROBE_DIGESTS: Readonly<Record<number, string>> = {
  1: 'e5a9cd053a3a405bd7b55762d684dbd21be668313c5684a2d3785ce9696e692d',
  2: '91a498990571935a63d63dd62ec890c1a0026c7981ebfcb2a576f33492dffd36',
  3: 'a47a2d35ad11537f58404a24779cd782de9722288d17d544a8c89d119a38bccc',
  4: '2d7d9c3ef03eeab70eef0d8e1fdf21d55a225fcefd9742f82a7367f2fddfe091',
  5: 'cdec63f45c969c12fe843fee6b7500ac65f5e90d6cecb7da9391f0f7105b8047',
  6: '238407de359f717a7f15f0dba2bd8d889af1368d4a416d7960d055b6429aacbb',
  7: 'ba82f18f5d5902e935e28eed6e65224cb386f23a4f8f522592f18404358ef4ef',
  8: '396d908692c793fc576540b5b034ff3b3245d9a75f1b836faaba48f198838a93',
  9: '396d908692c793fc576540b5b034ff3b3245d9a75f1b836faaba48f198838a93',
};

export const probeDigest = (raw: Uint8Array): string => createHash('sha256').update(raw).digest('hex');
