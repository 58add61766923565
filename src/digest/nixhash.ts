import { usageError } from '../errors.js';

/**
 * Nix's hash encodings for sha256: nix base32 (52 chars), hex (64), SRI (`sha256-<base64>`), and the
 * `sha256:<any of those>` prefixed form. Nix base32 uses its own alphabet (no e, o, u, t) and reads the bytes
 * from the end, so it is not RFC 4648; written here to the letter of libutil/hash.cc.
 */
const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const SHA256_BYTES = 32;
export const NIX32_LEN = Math.ceil((SHA256_BYTES * 8) / 5); // 52

export function toNix32(hash: Buffer): string {
  const len = Math.ceil((hash.length * 8) / 5);
  let s = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    const c = (hash[i]! >> j) | (i >= hash.length - 1 ? 0 : hash[i + 1]! << (8 - j));
    s += NIX32[c & 0x1f];
  }
  return s;
}

/** Inputs can be anything a user pasted: quote at most 100 characters of them. */
const quote = (s: string) => `"${s.length > 100 ? s.slice(0, 100) + '…' : s}"`;

export function fromNix32(s: string): Buffer {
  const size = Math.floor((s.length * 5) / 8);
  if (Math.ceil((size * 8) / 5) !== s.length) throw usageError(`${quote(s)} is not a nix base32 hash of a whole number of bytes`);
  const out = Buffer.alloc(size);
  for (let n = 0; n < s.length; n++) {
    const c = s[s.length - n - 1]!;
    const digit = NIX32.indexOf(c);
    if (digit < 0) throw usageError(`invalid character ${JSON.stringify(c)} in nix base32 hash ${quote(s)}`);
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    out[i] = out[i]! | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < size) out[i + 1] = out[i + 1]! | carry;
    else if (carry) throw usageError(`nix base32 hash ${quote(s)} has bits set past its length`);
  }
  return out;
}

export const toSRI = (hash: Buffer): string => 'sha256-' + hash.toString('base64');
export const toHex = (hash: Buffer): string => hash.toString('hex');

/** Parse any sha256 form Nix accepts (nix32, hex, SRI, base64, with or without `sha256:`), to 32 raw bytes. */
export function parseSha256(input: string): Buffer {
  let s = input.trim();
  if (s.startsWith('sha256-')) {
    const b = Buffer.from(s.slice(7), 'base64');
    if (b.length !== SHA256_BYTES || b.toString('base64') !== s.slice(7)) throw usageError(`${quote(input)} is not a valid SRI sha256 hash`);
    return b;
  }
  if (s.startsWith('sha256:')) s = s.slice(7);
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  if (s.length === NIX32_LEN) return fromNix32(s);
  if (s.length === 44) {
    const b = Buffer.from(s, 'base64');
    if (b.length === SHA256_BYTES && b.toString('base64') === s) return b;
  }
  if (/^(sha1|md5|sha512)[-:]/.test(s) || /^(sha1|md5|sha512)[-:]/.test(input)) throw usageError(`${quote(input)}: only sha256 hashes are supported`);
  throw usageError(`${quote(input)} is not a sha256 hash (expected nix base32, hex or SRI sha256-...)`);
}
