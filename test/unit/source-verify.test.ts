import { describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { verifyStream } from '../../src/source/verify.js';
import { goTime } from '../../src/inspect/inspect.js';
import { NixregError, ExitCode } from '../../src/errors.js';

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('verifyStream', () => {
  const data = Buffer.from('layer bytes '.repeat(1000));
  test('passes the bytes through when digest and size match', async () => {
    expect((await drain(verifyStream(Readable.from([data.subarray(0, 100), data.subarray(100)]), 'x', sha(data), data.length))).equals(data)).toBe(true);
  });
  test('fails with an integrity error on a wrong digest, a short or a long stream', async () => {
    const cases: Array<[Buffer, string, number | undefined, RegExp]> = [
      [data, sha(Buffer.from('other')), undefined, /x: digest mismatch: expected sha256:/],
      [data.subarray(1), sha(data), data.length, /x: size mismatch: expected 12000 bytes, got 11999/],
      [Buffer.concat([data, Buffer.from('!')]), sha(data), data.length, /x: size mismatch: expected 12000 bytes, got more/],
    ];
    for (const [input, digest, size, re] of cases) {
      const err = await drain(verifyStream(Readable.from([input]), 'x', digest, size)).catch((e) => e);
      expect(err).toBeInstanceOf(NixregError);
      expect(err.exitCode).toBe(ExitCode.integrity);
      expect(err.message).toMatch(re);
    }
  });
  test('an error of the input surfaces on the verified stream', async () => {
    const src = new Readable({ read() {} });
    const v = verifyStream(src, 'x', sha(data));
    setImmediate(() => src.destroy(new Error('disk on fire')));
    await expect(drain(v)).rejects.toThrow(/disk on fire/);
  });
});

describe('goTime (Created as skopeo prints it)', () => {
  test("Go's RFC 3339: zero offset as Z, fractional zeros trimmed, other offsets kept", () => {
    expect(goTime('1970-01-01T00:00:01+00:00')).toBe('1970-01-01T00:00:01Z');
    expect(goTime('2024-01-02T03:04:05.120000Z')).toBe('2024-01-02T03:04:05.12Z');
    expect(goTime('2024-01-02T03:04:05.000+02:00')).toBe('2024-01-02T03:04:05+02:00');
    expect(goTime('not a time')).toBe('not a time');
  });
});
