import { describe, expect, it } from 'vitest';
import { createPrivateKey, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { secretboxOpen } from '../../src/sbom/secretbox.js';
import { FIXTURES } from '../helpers/store-tree.js';

// The box in test/fixtures/sign-cosign-key/cosign.key was sealed by libsodium's crypto_secretbox_easy.
const doc = () => {
  const pem = readFileSync(join(FIXTURES, 'sign-cosign-key', 'cosign.key'), 'utf8');
  return JSON.parse(Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64').toString('utf8'));
};

describe('secretboxOpen (XSalsa20-Poly1305)', () => {
  const d = doc();
  const key = scryptSync('nixreg-test', Buffer.from(d.kdf.salt, 'base64'), 32, { N: d.kdf.params.N, r: 8, p: 1, maxmem: 64 << 20 });
  const box = Buffer.from(d.ciphertext, 'base64');
  const nonce = Buffer.from(d.cipher.nonce, 'base64');

  it("opens libsodium's box into the PKCS#8 key", () => {
    const der = secretboxOpen(box, nonce, key)!;
    expect(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('refuses any changed byte of tag, ciphertext, nonce or key', () => {
    for (const [what, i] of [
      ['tag', 3],
      ['ciphertext', 40],
      ['ciphertext', box.length - 1],
    ] as const) {
      const b = Buffer.from(box);
      b[i]! ^= 1;
      expect(secretboxOpen(b, nonce, key), `${what} ${i}`).toBeUndefined();
    }
    const n = Buffer.from(nonce);
    n[20]! ^= 0x80;
    expect(secretboxOpen(box, n, key)).toBeUndefined();
    const k = Buffer.from(key);
    k[0]! ^= 1;
    expect(secretboxOpen(box, nonce, k)).toBeUndefined();
  });
});
