import { timingSafeEqual } from 'node:crypto';

/**
 * NaCl's crypto_secretbox_open (XSalsa20 + Poly1305, https://nacl.cr.yp.to/secretbox.html), which node:crypto
 * lacks; cosign's encrypted key files use it. `box` is tag (16 bytes) || ciphertext, as NaCl, libsodium's
 * crypto_secretbox_easy and Go's secretbox.Seal write it. undefined when the tag does not verify.
 */
export function secretboxOpen(box: Buffer, nonce: Buffer, key: Buffer): Buffer | undefined {
  if (key.length !== 32 || nonce.length !== 24 || box.length < 16) return undefined;
  const subkey = hsalsa20(key, nonce.subarray(0, 16));
  const stream = salsa20Stream(subkey, nonce.subarray(16, 24), 32 + box.length - 16);
  const tag = poly1305(box.subarray(16), stream.subarray(0, 32));
  if (!timingSafeEqual(tag, box.subarray(0, 16))) return undefined;
  const out = Buffer.alloc(box.length - 16);
  for (let i = 0; i < out.length; i++) out[i] = box[16 + i]! ^ stream[32 + i]!;
  return out;
}

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];
const rotl = (v: number, n: number) => ((v << n) | (v >>> (32 - n))) >>> 0;

/** The state of the Salsa20 core for a 32-byte key and 16 bytes of input (nonce and counter). */
function state(key: Buffer, input: Buffer): Uint32Array {
  const s = new Uint32Array(16);
  s[0] = SIGMA[0]!;
  s[5] = SIGMA[1]!;
  s[10] = SIGMA[2]!;
  s[15] = SIGMA[3]!;
  for (let i = 0; i < 4; i++) {
    s[1 + i] = key.readUInt32LE(4 * i);
    s[11 + i] = key.readUInt32LE(16 + 4 * i);
    s[6 + i] = input.readUInt32LE(4 * i);
  }
  return s;
}

/** 20 rounds (10 column/row double rounds) in place. */
function rounds(x: Uint32Array): void {
  const qr = (a: number, b: number, c: number, d: number) => {
    x[b]! ^= rotl((x[a]! + x[d]!) >>> 0, 7);
    x[c]! ^= rotl((x[b]! + x[a]!) >>> 0, 9);
    x[d]! ^= rotl((x[c]! + x[b]!) >>> 0, 13);
    x[a]! ^= rotl((x[d]! + x[c]!) >>> 0, 18);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12), qr(5, 9, 13, 1), qr(10, 14, 2, 6), qr(15, 3, 7, 11);
    qr(0, 1, 2, 3), qr(5, 6, 7, 4), qr(10, 11, 8, 9), qr(15, 12, 13, 14);
  }
}

function hsalsa20(key: Buffer, input16: Buffer): Buffer {
  const x = state(key, input16);
  rounds(x);
  const out = Buffer.alloc(32);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => out.writeUInt32LE(x[w]!, 4 * i));
  return out;
}

function salsa20Stream(key: Buffer, nonce8: Buffer, length: number): Buffer {
  const out = Buffer.alloc(Math.ceil(length / 64) * 64);
  const input = Buffer.alloc(16);
  nonce8.copy(input, 0);
  for (let block = 0; block * 64 < length; block++) {
    input.writeUInt32LE(block >>> 0, 8);
    input.writeUInt32LE(Math.floor(block / 2 ** 32), 12);
    const s = state(key, input);
    const x = s.slice();
    rounds(x);
    for (let i = 0; i < 16; i++) out.writeUInt32LE((x[i]! + s[i]!) >>> 0, block * 64 + 4 * i);
  }
  return out.subarray(0, length);
}

const le = (b: Buffer): bigint => {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
};

/** Poly1305 (RFC 8439 section 2.5) with BigInt: fine for the few hundred bytes of a key file. */
function poly1305(msg: Buffer, key: Buffer): Buffer {
  const p = (1n << 130n) - 5n;
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = le(key.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const chunk = msg.subarray(i, i + 16);
    acc = ((acc + le(chunk) + (1n << BigInt(8 * chunk.length))) * r) % p;
  }
  acc = (acc + s) & ((1n << 128n) - 1n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = Number((acc >> BigInt(8 * i)) & 0xffn);
  return out;
}
