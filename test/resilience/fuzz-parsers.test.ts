import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseImageReference, normalizeTaggedName } from '../../src/reference/reference.js';
import { parseDigest } from '../../src/digest/sha256.js';
import { fromNix32, parseSha256, toNix32, toSRI } from '../../src/digest/nixhash.js';
import { parseManifest } from '../../src/manifest/manifest.js';
import { MediaType } from '../../src/manifest/media-types.js';
import { parseChallenge, parseChallenges, pickChallenge } from '../../src/registry/auth/challenge.js';
import { parseCredsFlag } from '../../src/registry/auth/credentials.js';
import { oneLine } from '../../src/errors.js';
import { FC, expectNixregErrorOrValue } from './fuzz-helpers.js';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const DIST = join(resolve(import.meta.dirname, '../..'), 'dist');

/**
 * Bad-input fuzzing of the pure parsers: every generated input parses or throws NixregError with a
 * short one-line message. Seeded and bounded, so a failure names a reproducible counterexample.
 */

// Strings that look almost right: pieces of real syntax glued with noise, so the generators reach deep branches.
const refPiece = fc.constantFrom(
  'docker.io',
  'localhost',
  '127.0.0.1:5000',
  '[::1]:5000',
  'quay.io',
  'library',
  'nginx',
  'a',
  'A',
  '..',
  '.',
  '-',
  '_',
  '__',
  '/',
  ':',
  '@',
  'sha256:',
  'ab'.repeat(32),
  'docker://',
  'latest',
  ' ',
  '\n',
  '\u0000',
  'é',
  '🚀',
  'x'.repeat(130),
);
const nearlyReference = fc.array(fc.oneof(refPiece, fc.string({ maxLength: 8 })), { maxLength: 12 }).map((a) => a.join(''));
const anyText = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }));

describe('image references', () => {
  it('parse or fail with a one-line usage error', () => {
    fc.assert(
      fc.property(fc.oneof(nearlyReference, anyText), (s) => {
        expectNixregErrorOrValue(() => parseImageReference(s));
        expectNixregErrorOrValue(() => normalizeTaggedName(s));
      }),
      FC,
    );
  });

  it('a huge reference fails fast with a message that quotes only a prefix', () => {
    // 'a'×40 + '!' once took hours: distribution's path regexp backtracks exponentially in JavaScript.
    for (const s of [
      'a'.repeat(40) + '!',
      'ab-'.repeat(30) + 'A',
      'a/'.repeat(200_000) + 'b',
      'x'.repeat(1 << 20),
      `${'a'.repeat(300)}:${'t'.repeat(300)}`,
      'a@sha256:' + 'f'.repeat(1 << 16),
    ]) {
      expectNixregErrorOrValue(() => parseImageReference(s));
    }
  });

  it('pathological references are rejected in linear time (checked in a child with a deadline, so a backtracking regexp fails instead of hanging the run)', () => {
    // Needs dist/ (npm test builds first). Every input is long enough that exponential backtracking would take years.
    const inputs = [
      'a'.repeat(5000) + '!',
      'a-'.repeat(3000) + '!',
      'a.b'.repeat(2000) + '/!',
      'a' + '__a'.repeat(2000) + 'A',
      `${'a.'.repeat(3000)}a:5000!/x`,
      `x/${'a'.repeat(3000)}:${'t'.repeat(100)}!`,
    ];
    const code = `import('${join(DIST, 'src/reference/reference.js')}').then((m) => { for (const s of ${JSON.stringify(inputs)}) { try { m.parseImageReference(s); } catch (e) { if (e.name !== 'NixregError') throw e; } } console.log('done'); })`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 10_000 });
    expect(r.signal, 'parseImageReference did not finish within 10 s').toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('done\n');
  });

  it('whatever parses round-trips through its normalised name', () => {
    fc.assert(
      fc.property(nearlyReference, (s) => {
        let r;
        try {
          r = parseImageReference(s);
        } catch {
          return;
        }
        const again = parseImageReference(r.name + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : ''));
        expect(again).toEqual(r);
      }),
      FC,
    );
  });
});

describe('digests and Nix hashes', () => {
  const hexish = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFg'), minLength: 60, maxLength: 68 });
  const nix32ish = fc.string({ unit: fc.constantFrom(...'0123456789abcdfghijklmnpqrsvwxyzeotu'), minLength: 50, maxLength: 54 });
  const prefixed = fc
    .tuple(fc.constantFrom('sha256:', 'sha256-', 'sha512:', 'sha1-', 'md5:', '', ' '), fc.oneof(hexish, nix32ish, fc.base64String({ maxLength: 60 }), anyText))
    .map(([p, s]) => p + s);

  it('parseDigest accepts exactly sha256:<64 lowercase hex> and otherwise fails in one line', () => {
    fc.assert(
      fc.property(fc.oneof(prefixed, anyText), (s) => {
        let ok = false;
        expectNixregErrorOrValue(() => {
          parseDigest(s, '--digest');
          ok = true;
        });
        expect(ok).toBe(/^sha256:[0-9a-f]{64}$/.test(s));
      }),
      FC,
    );
  });

  it('parseSha256 / fromNix32 never throw anything but NixregError', () => {
    fc.assert(
      fc.property(fc.oneof(prefixed, nix32ish, anyText), (s) => {
        expectNixregErrorOrValue(() => parseSha256(s));
        expectNixregErrorOrValue(() => fromNix32(s));
      }),
      FC,
    );
  });

  it('every encoding of every hash parses back to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (a) => {
        const h = Buffer.from(a);
        for (const form of [toNix32(h), h.toString('hex'), toSRI(h), h.toString('base64'), 'sha256:' + toNix32(h), 'sha256:' + h.toString('hex')])
          expect(parseSha256(form).equals(h)).toBe(true);
      }),
      FC,
    );
  });

  it('huge hash inputs fail with a bounded message', () => {
    for (const s of ['a'.repeat(1 << 20), 'sha256-' + 'A'.repeat(1 << 20), '0'.repeat(52 * 1000)]) {
      expectNixregErrorOrValue(() => parseSha256(s));
      expectNixregErrorOrValue(() => fromNix32(s));
    }
  });
});

describe('manifests, indexes and configs', () => {
  const digest = fc.oneof(fc.constant('sha256:' + 'a'.repeat(64)), fc.constant('sha512:' + 'a'.repeat(128)), anyText);
  const weird = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.constant(2 ** 60),
    fc.constant(-1),
    anyText,
    fc.constant([]),
    fc.constant({}),
  );
  const descriptor = fc.record(
    {
      mediaType: fc.oneof(fc.constantFrom(...Object.values(MediaType)), weird),
      digest: fc.oneof(digest, weird),
      size: fc.oneof(fc.nat(), weird),
      platform: weird,
    },
    { requiredKeys: [] },
  );
  const manifestish = fc.record(
    {
      schemaVersion: fc.oneof(fc.constantFrom(1, 2, 2, 2, '2', 3), weird),
      mediaType: fc.oneof(fc.constantFrom(...Object.values(MediaType)), weird),
      config: fc.oneof(descriptor, weird),
      layers: fc.oneof(fc.array(fc.oneof(descriptor, weird), { maxLength: 5 }), weird),
      manifests: fc.oneof(fc.array(fc.oneof(descriptor, weird), { maxLength: 5 }), weird),
      annotations: fc.oneof(fc.dictionary(fc.string(), fc.string()), weird),
      signatures: weird,
    },
    { requiredKeys: [] },
  );
  const contentType = fc.oneof(fc.constantFrom(...Object.values(MediaType), '', 'application/json', 'text/plain; charset=utf-8'), anyText);

  it('parseManifest: structured garbage', () => {
    fc.assert(
      fc.property(manifestish, contentType, (m, ct) => {
        expectNixregErrorOrValue(() => parseManifest(Buffer.from(JSON.stringify(m)), ct));
      }),
      FC,
    );
  });

  it('parseManifest: arbitrary JSON values and bytes (non-UTF-8 included)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
          fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
        ),
        contentType,
        (b, ct) => {
          expectNixregErrorOrValue(() => parseManifest(b, ct));
        },
      ),
      FC,
    );
  });

  it('deep nesting, duplicate keys and huge numbers fail or parse in one line', () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const inputs = [
      `{"schemaVersion":2,"mediaType":"${MediaType.ociIndex}","manifests":${deep(200_000)}}`,
      `{"schemaVersion":2,"config":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)},"layers":[]}`,
      `{"schemaVersion":2,"schemaVersion":1,"config":{},"layers":[]}`,
      `{"schemaVersion":1,"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":1e400},"layers":[]}`,
      `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":9007199254740993},"layers":[]}`,
      `{"schemaVersion":2,"mediaType":"${'m'.repeat(1 << 20)}","layers":[]}`,
      `{"schemaVersion":"${'9'.repeat(1 << 20)}"}`,
      `{"schemaVersion":{"a":"${'x'.repeat(1 << 16)}"}}`,
      '\ufeff{"schemaVersion":2}',
    ];
    for (const s of inputs) expectNixregErrorOrValue(() => parseManifest(Buffer.from(s), ''));
    expectNixregErrorOrValue(() => parseManifest(Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]), MediaType.ociManifest));
  });

  it('a valid manifest with a non-sha256 layer digest names the bad descriptor', () => {
    const m = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: 'sha256:' + 'a'.repeat(64), size: 2 },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: 'md5:abc', size: 1 }],
    };
    expect(() => parseManifest(Buffer.from(JSON.stringify(m)), MediaType.ociManifest)).toThrow(
      'invalid manifest: layers[0] has an invalid or non-sha256 digest',
    );
  });
});

describe('WWW-Authenticate headers and --creds', () => {
  const headerPiece = fc.constantFrom(
    'Bearer',
    'Basic',
    'bearer',
    'realm',
    '=',
    '"',
    '\\',
    ',',
    ' ',
    'service',
    'scope',
    'https://a/t',
    '\t',
    'error="insufficient_scope"',
  );
  const header = fc.oneof(
    fc.array(fc.oneof(headerPiece, fc.string({ maxLength: 6 })), { maxLength: 16 }).map((a) => a.join('')),
    anyText,
  );

  it('parseChallenge never throws and keys are lower-case', () => {
    fc.assert(
      fc.property(fc.oneof(header, fc.array(header, { maxLength: 4 })), (h) => {
        const cs = parseChallenges(h);
        pickChallenge(cs);
        for (const c of cs) {
          expect(c.scheme).toBe(c.scheme.toLowerCase());
          for (const k of Object.keys(c.params)) expect(k).toBe(k.toLowerCase());
        }
      }),
      FC,
    );
  });

  it('a quoted value survives any escaping', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (v) => {
        const quoted = '"' + v.replace(/[\\"]/g, (c) => '\\' + c) + '"';
        expect(parseChallenge(`Bearer realm=${quoted},service="s"`)?.params).toEqual({ realm: v, service: 's' });
      }),
      FC,
    );
  });

  it('huge headers parse in linear time (no quadratic blow-up)', () => {
    const h = 'Bearer ' + Array.from({ length: 50_000 }, (_, i) => `k${i}="${'v'.repeat(10)}"`).join(',');
    expect(Object.keys(parseChallenge(h)!.params).length).toBe(50_000);
    expect(parseChallenge('Bearer realm="' + '\\"'.repeat(200_000))?.params).toEqual({});
  });

  it('--creds parses or fails in one line, never echoing the password', () => {
    fc.assert(
      fc.property(anyText, (s) => {
        try {
          parseCredsFlag(s);
        } catch (err) {
          expectNixregErrorOrValue(() => {
            throw err;
          });
          const pw = s.slice(s.indexOf(':') + 1);
          if (pw.length > 3) expect((err as Error).message).not.toContain(pw);
        }
      }),
      FC,
    );
  });
});

describe('oneLine', () => {
  it('never leaves a line break of any kind', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        expect(oneLine(s)).not.toMatch(/[\r\n\u2028\u2029]/);
      }),
      FC,
    );
  });
});
