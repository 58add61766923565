import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodePythonPaxHeader, endOfArchive, memberLength, padTo512, pythonPaxHeaderLength, type PyTarInfo } from '../../src/tar/python-pax.js';

/**
 * Byte-exactness of the Python tarfile PAX writer. The vectors are [length, sha256] of
 * `TarInfo.tobuf(PAX_FORMAT, "utf-8", "surrogateescape")` (and of whole `tarfile.open(mode="w|")` archives)
 * produced by CPython 3.11.7 for the TarInfo described next to each case.
 */
const PY: Record<string, [number, string]> = {
  'short-file': [512, '1960f9c7cf77e9e527044fba66a36e0f04c2c1139efbef84f6728b538442935e'],
  'dir-slash': [512, '07d3d82be2d2fe3c138b3abccb516d7c4c1e70cafada84c8d30ec86114dc552f'],
  'name-100': [512, 'dd6871d722190f0ee46eec4f6e94e0c0dd3c123e6af2e2df04bcc8b3c2e94404'],
  'name-101': [1536, '99b354d83b0a31c256b3e2824fa59ba8b99054d7a2af51f4023d5c310b9e586a'],
  'dir-100-with-slash': [1536, 'f47aeede5aff2bce175d4668f1b017e69ad3f291a92206ce5a6e7b198ff6f452'],
  'non-ascii': [1536, '1d6c8e6dedbf6097439c7070d5a477ac7b3a643323ea754de6977174a0d03897'],
  astral: [1536, '7afd680f75fb9c0ed510ee08d5a84d8a8ab6560c477004729fc50598ffd9fc27'],
  'symlink-long-target': [1536, '3b4bb3acc15d30cbeab7bde4f420cd21a725d15a9cb35ff43edd6780c0dbba72'],
  'symlink-nonascii-target': [1536, 'f2e90bf05a535d00232d7cad7d2e477cc872da1e1601d3736a82aec7b4d94144'],
  'uname-33': [1536, '5bc0f7a63152cace5a445966cd41b9dbbe9f2089f142a95e24235c5b5bf46a64'],
  'uid-big': [1536, 'e86c05428b6c5a8f08ebcc07194d8cc0f5ed0bb50f77186b080a7c0b19eb4f27'],
  'uid-negative': [1536, '765aa38d75b79c906ca6f76975d00ef6f995c206eab2ba537f8a3872de339bab'],
  'mtime-big': [1536, '60e318106bd80110c5e4627be5b30fc3e557f0d4a95db046c0b69e8165671ccc'],
  'mtime-2100': [512, '5dca2b367382d7318cd675700e1ab8768221a35543b2dfcc89b740c85d1bde07'],
  'mtime-negative': [1536, '9c18deff0eb92a4b49cfda4a93cb39912b4d1b8457637eb22dceab5ecc65c218'],
  'size-big': [1536, 'cdda27794f0dec9ce408952b87b8ecda714d55c4f18156dc40e4ca636cf6ba7c'],
  'pax-len-999': [2048, '89f19e5553d5d902cc64c49ae670eaac39ea6f849914efbac57b6017decb4642'],
  'pax-len-1001': [2048, '0ef5cc4bbe70d9284ea5ff80e4f35a3bf82e6b354e6c347975cc48c5dae1c442'],
  'pax-len-1002': [2048, '7ba959738fb0b0a8153ca96fb53935303fd9de49b7bc31f4b9dbe28b3136155a'],
  'binary-name': [1536, '5abff166e236d5d32ca9cf23294a5eb75757ee2f45300655f686015364358208'],
  chardev: [512, '05c7b3e99ed4eed9bbda1ab4b6bc8575d4f0dbc531d770ea3feb44bebf18f1fa'],
  'pax-priority': [1536, '27be90bc770c8c87e5436f736b9698fda5184f471b2fd56e248f34006798b2ca'],
  'float-mtime': [1536, '88b2505f99048c2a0dd2e58282ea1f9a802c9ff10d78e010c4c3a618af04e63c'],
  'archive-0': [10240, '84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652'],
  'archive-1': [10240, 'a0ade6cdbbecd4b4a86a5aaf8c331c0f7613ac12f35a301b3e5294ecd5b2f7a6'],
  'archive-5': [10240, '15e857ca13ef20b2724622bac1a3875885c995523a1153b54e76eb7d903132a1'],
};

const base = (over: Partial<PyTarInfo>): PyTarInfo => ({
  name: '/f',
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtime: 1,
  uname: '',
  gname: '',
  ...over,
});
const CASES: Record<string, PyTarInfo> = {
  'short-file': base({ name: '/nix/store/abc-x/bin/hello', mode: 0o555, size: 224, uname: 'root', gname: 'root' }),
  'dir-slash': base({ name: '/nix/store', type: 'dir', mode: 0o755 }),
  'name-100': base({ name: '/' + 'a'.repeat(99) }),
  'name-101': base({ name: '/' + 'a'.repeat(100) }),
  'dir-100-with-slash': base({ name: '/' + 'd'.repeat(99), type: 'dir', mode: 0o555 }),
  'non-ascii': base({ name: '/nix/store/x/données/naïve-résumé.txt', size: 16 }),
  astral: base({ name: '/sort/🚀', size: 7 }),
  'symlink-long-target': base({ name: '/l', type: 'symlink', mode: 0o777, linkname: '/nix/store/' + 't'.repeat(120) }),
  'symlink-nonascii-target': base({ name: '/sort/link-ü', type: 'symlink', mode: 0o777, linkname: '../données/naïve.txt' }),
  'uname-33': base({ uname: 'u'.repeat(33), gname: 'g'.repeat(32) }),
  'uid-big': base({ uid: 8 ** 7, gid: 8 ** 7 - 1 }),
  'uid-negative': base({ uid: -1 }),
  'mtime-big': base({ mtime: 8 ** 11 }),
  'mtime-2100': base({ mtime: 4102444800 }),
  'mtime-negative': base({ mtime: -5 }),
  'size-big': base({ size: 8 ** 11 }),
  'pax-len-999': base({ name: '/' + 'p'.repeat(988) }),
  'pax-len-1001': base({ name: '/' + 'q'.repeat(989) }),
  'pax-len-1002': base({ name: '/' + 'r'.repeat(990) }),
  'binary-name': base({ name: Buffer.from('/bad-\xff-name', 'latin1'), size: 3 }),
  chardev: base({ name: '/dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }),
  'pax-priority': base({
    name: '/' + 'z'.repeat(120),
    size: 5,
    paxHeaders: [
      ['mtime', '1.5'],
      ['path', '/other'],
    ],
  }),
  'float-mtime': base({ mtime: 2.5 }),
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('encodePythonPaxHeader matches CPython tarfile byte for byte', () => {
  for (const [name, info] of Object.entries(CASES)) {
    it(name, () => {
      const got = encodePythonPaxHeader(info);
      expect([got.length, sha(got)]).toEqual(PY[name]);
      expect(memberLength(info)).toBe(got.length + info.size + padTo512(info.size));
    });
  }

  it('writes PAX records with the self-counting length and the 100-char ASCII name field', () => {
    const name = '/' + 'a'.repeat(100);
    const b = encodePythonPaxHeader(base({ name }));
    expect(b.subarray(0, 14).toString()).toBe('././@PaxHeader');
    expect(b.subarray(512, 512 + 111).toString()).toBe(`111 path=${name}\n`);
    // USTAR name = first 100 chars, no NUL terminator
    expect(b.subarray(1024, 1124).toString()).toBe(name.slice(0, 100));
    expect(b.subarray(1024 + 257, 1024 + 265).toString('latin1')).toBe('ustar\x0000');
  });

  it('replaces non-ASCII characters by one "?" per code point in the USTAR name', () => {
    const b = encodePythonPaxHeader(base({ name: '/é🚀' }));
    expect(b.subarray(1024, 1028).toString('latin1')).toBe('/??\0');
  });
});

describe('whole archives (stream mode, 10240-byte records)', () => {
  const build = (n: number) => {
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const data = Buffer.alloc(i * 300, 'x');
      parts.push(encodePythonPaxHeader(base({ name: `/f${i}`, size: data.length })), data, Buffer.alloc(padTo512(data.length)));
    }
    const body = Buffer.concat(parts);
    return Buffer.concat([body, endOfArchive(body.length)]);
  };
  for (const n of [0, 1, 5]) {
    it(`${n} members`, () => {
      const a = build(n);
      expect([a.length, sha(a)]).toEqual(PY[`archive-${n}`]);
    });
  }
  it('pads to the next record boundary', () => {
    expect(endOfArchive(0).length).toBe(10240);
    expect(endOfArchive(9216).length).toBe(1024);
    expect(endOfArchive(9217).length).toBe(1024 + 10239);
  });
});

describe('pythonPaxHeaderLength (fast path for planning)', () => {
  it('equals the encoded header length for any name, link, owner and number', () => {
    const text = fc.oneof(fc.string({ maxLength: 140 }), fc.string({ unit: 'grapheme', maxLength: 60 }));
    const bytes = fc.uint8Array({ maxLength: 130 }).map((a) => Buffer.from(a));
    const num = fc.oneof(fc.nat({ max: 3000 }), fc.constantFrom(8 ** 7 - 1, 8 ** 7, 8 ** 11 - 1, 8 ** 11), fc.double({ min: 0, max: 1e12, noNaN: true }));
    fc.assert(
      fc.property(
        fc.record({
          name: fc.oneof(text, bytes),
          type: fc.constantFrom('file', 'dir', 'symlink'),
          linkname: fc.option(fc.oneof(text, bytes), { nil: undefined }),
          uname: fc.option(text, { nil: undefined }),
          gname: fc.option(text, { nil: undefined }),
          uid: num,
          gid: num,
          size: num,
          mtime: num,
          mode: fc.constant(0o644),
        }),
        (info) => {
          const i = { ...info, name: info.name.length ? info.name : 'x' } as PyTarInfo;
          expect(pythonPaxHeaderLength(i)).toBe(encodePythonPaxHeader(i).length);
        },
      ),
      { seed: 20261121, numRuns: 3000 },
    );
  });
});
