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
 * level 1–9, as pako 3.0.3 (the pinned reference encoder) writes it. test/unit/deflate-probe.test.ts recomputes
 * every entry with pako, so the table cannot drift from the encoder it describes.
 */
export const PROBE_DIGESTS: Readonly<Record<number, string>> = {
  1: 'a737ef3210ab0fae489821ed19d2e15995f1ccf629af9466554a2563ab7b0be6',
  2: '1eb8202054b51f8f06666d05ffcb666b2b8d9aec7ec4044ff22e7a1d568f9072',
  3: '63b55003c83dcaa76ecfc9585695f0f1c7cbc3c7f2ac8609fe3591bea33ba7e0',
  4: 'b56c6861e1942b8f5a2379c7c0acc7495b86d4054d3b120ec3300958f3d5c0b2',
  5: '935eab3225aa5e8a15a47283f6b9b016a6cb4fe5b4584d2a9d07dc3531ce5ad4',
  6: '10cc592f5fd7e2dd604ded3f85e5ee3ecff5577c48319367e3dd646013170598',
  7: '697b686a94427a959cc3979afa1864d638fe606cd5b864608ab7d7d2f1fc71bd',
  8: '9fda7ad28f86ee72a702273f6a124066f9fb5c7218a4c484e569ef7b10e1a950',
  9: '9fda7ad28f86ee72a702273f6a124066f9fb5c7218a4c484e569ef7b10e1a950',
};

export const probeDigest = (raw: Uint8Array): string => createHash('sha256').update(raw).digest('hex');
