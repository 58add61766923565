import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromNix32, parseSha256, toNix32, toSRI } from '../../src/digest/nixhash.js';
import { nixHashFlatBase32, nixHashFileSRI } from '../helpers/tools.js';

describe('nix hash encodings', () => {
  it('matches nix-hash --flat --base32 and nix hash file (SRI) from Debian nix-bin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-hash-'));
    for (const [i, content] of ['', 'abc', 'x'.repeat(100_000), '\u00e9\u65e5'].entries()) {
      const f = join(dir, `f${i}`);
      writeFileSync(f, content);
      const raw = createHash('sha256').update(content).digest();
      expect(toNix32(raw)).toBe(nixHashFlatBase32(f));
      expect(toSRI(raw)).toBe(nixHashFileSRI(f));
      expect(fromNix32(toNix32(raw)).equals(raw)).toBe(true);
    }
  });

  it('round-trips every form and agrees with nix hash to-base32', () => {
    const raw = createHash('sha256').update('nixreg').digest();
    const sri = toSRI(raw);
    const nix32 = execFileSync('nix', ['--extra-experimental-features', 'nix-command', 'hash', 'to-base32', sri], {
      encoding: 'utf8',
    }).trim();
    expect(toNix32(raw)).toBe(nix32);
    for (const form of [sri, nix32, raw.toString('hex'), `sha256:${nix32}`, `sha256:${raw.toString('hex')}`]) expect(parseSha256(form).equals(raw)).toBe(true);
  });

  it('rejects malformed hashes with a one-line usage error', () => {
    for (const bad of ['', 'sha256-abc', 'zzzz', 'e'.repeat(52), 'sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=']) {
      expect(() => parseSha256(bad)).toThrow(/hash|sha256/);
    }
  });
});
