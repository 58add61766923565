import { describe, expect, test } from 'vitest';
import { goTarHeader, goTarFile, paxRecord, padding, TAR_TRAILER } from '../../src/tar/go-ustar.js';
import { goCompactHTML, goSortedObject, goString, topLevelRawMembers } from '../../src/archive/go-json.js';
import { legacyLayers } from '../../src/archive/legacy-ids.js';
import { createHash } from 'node:crypto';

const field = (b: Buffer, off: number, len: number) => b.subarray(off, off + len).toString('latin1');
const checksumOf = (b: Buffer) => {
  const c = Buffer.from(b);
  c.fill(0x20, 148, 156);
  return c.reduce((s, x) => s + x, 0);
};

describe('Go archive/tar USTAR headers', () => {
  test('the first header of the spec archive, field by field', () => {
    const name = '0a46cf3d9bc864366d06c38fa7265860b56592f257129a28a6c86a53ce6013f7.tar';
    const h = goTarHeader({ name, type: 'file', size: 10240 });
    expect(h.length).toBe(512);
    expect(field(h, 0, 100)).toBe(name + '\0'.repeat(100 - name.length));
    expect(field(h, 100, 8)).toBe('0000444\0');
    expect(field(h, 108, 8)).toBe('0000000\0');
    expect(field(h, 116, 8)).toBe('0000000\0');
    expect(field(h, 124, 12)).toBe('00000024000\0');
    expect(field(h, 136, 12)).toBe('00000000000\0');
    expect(field(h, 148, 8)).toBe('020231\0 '); // the value skopeo wrote (skopeo 1.9.3's archive, hex dump)
    expect(parseInt(field(h, 148, 6), 8)).toBe(checksumOf(h));
    expect(field(h, 156, 1)).toBe('0');
    expect(field(h, 157, 100)).toBe('\0'.repeat(100));
    expect(field(h, 257, 8)).toBe('ustar\x0000');
    expect(field(h, 265, 64)).toBe('\0'.repeat(64)); // uname, gname
    expect(field(h, 329, 16)).toBe('0000000\x000000000\0');
    expect(field(h, 345, 167)).toBe('\0'.repeat(167));
  });

  test('symlink: mode 0, size 0, typeflag 2, linkname', () => {
    const target = '../' + 'a'.repeat(64) + '.tar';
    const h = goTarHeader({ name: 'b'.repeat(64) + '/layer.tar', type: 'symlink', linkname: target });
    expect(field(h, 100, 8)).toBe('0000000\0');
    expect(field(h, 124, 12)).toBe('00000000000\0');
    expect(field(h, 156, 1)).toBe('2');
    expect(field(h, 157, 71)).toBe(target);
    expect(h[157 + 71]).toBe(0);
    expect(parseInt(field(h, 148, 6), 8)).toBe(checksumOf(h));
    expect(field(h, 154, 2)).toBe('\0 ');
  });

  test('file data is NUL-padded to 512; the trailer is two zero blocks', () => {
    expect(padding(0).length).toBe(0);
    expect(padding(1).length).toBe(511);
    expect(padding(512).length).toBe(0);
    expect(padding(513).length).toBe(511);
    const f = goTarFile('VERSION', Buffer.from('1.0'));
    expect(f.length).toBe(1024);
    expect(f.subarray(512, 515).toString()).toBe('1.0');
    expect(f.subarray(515).every((b) => b === 0)).toBe(true);
    expect(TAR_TRAILER.equals(Buffer.alloc(1024))).toBe(true);
  });

  test('sizes of 8 GiB and more use the PAX fallback named PaxHeaders.0/<name>', () => {
    const size = 8 * 1024 ** 3;
    expect(paxRecord('size', String(size))).toBe('19 size=8589934592\n');
    expect(paxRecord('size', '1')).toBe('9 size=1\n');
    expect(paxRecord('size', '1234567')).toBe('16 size=1234567\n');
    const h = goTarHeader({ name: 'x.tar', type: 'file', size });
    expect(h.length).toBe(512 * 3);
    const x = h.subarray(0, 512);
    expect(field(x, 0, 100)).toBe('PaxHeaders.0/x.tar' + '\0'.repeat(82));
    expect(field(x, 156, 1)).toBe('x');
    expect(field(x, 100, 8)).toBe('0000000\0');
    expect(field(x, 124, 12)).toBe('00000000023\0');
    expect(field(x, 257, 8)).toBe('ustar\x0000');
    expect(field(x, 329, 16)).toBe('\0'.repeat(16)); // writeRawFile leaves devmajor/devminor empty
    expect(parseInt(field(x, 148, 6), 8)).toBe(checksumOf(x));
    expect(field(h, 512, 19)).toBe('19 size=8589934592\n');
    expect(h.subarray(512 + 19, 1024).every((b) => b === 0)).toBe(true);
    const real = h.subarray(1024);
    expect(field(real, 0, 6)).toBe('x.tar\0');
    expect(field(real, 124, 12)).toBe('00000000000\0');
    expect(field(real, 100, 8)).toBe('0000444\0');
    const under = goTarHeader({ name: 'x.tar', type: 'file', size: size - 1 });
    expect(under.length).toBe(512);
    expect(field(under, 124, 12)).toBe('77777777777\0');
  });
});

describe('Go encoding/json pieces', () => {
  test('compaction keeps key order, escapes and number text; HTML-escapes <>& and U+2028/9', () => {
    const raw = Buffer.from(
      '{\n  "Env" : [ "X=a<b&c>d", "U=caf\\u00e9 ü" ],\n\t"z": 1.50, "a": { "q\\"{[": "} ]" },\r\n "s": "a\u2028b\u2029c", "e": "\\u003c" }',
    );
    expect(goCompactHTML(raw).toString()).toBe(
      '{"Env":["X=a\\u003cb\\u0026c\\u003ed","U=caf\\u00e9 ü"],"z":1.50,"a":{"q\\"{[":"} ]"},"s":"a\\u2028b\\u2029c","e":"\\u003c"}',
    );
    expect(goCompactHTML(Buffer.from(' "a\\\\<" ')).toString()).toBe('"a\\\\\\u003c"');
    expect(goCompactHTML(Buffer.from('null')).toString()).toBe('null');
  });

  test('string encoder and sorted objects', () => {
    expect(goString('a"b\\c\n\t<&>\u2028\u0001é')).toBe('"a\\"b\\\\c\\n\\t\\u003c\\u0026\\u003e\\u2028\\u0001é"');
    expect(goSortedObject({ parent: '"p"', id: '"i"', architecture: '"amd64"', layer_id: '"l"' }).toString()).toBe(
      '{"architecture":"amd64","id":"i","layer_id":"l","parent":"p"}',
    );
    expect(goSortedObject({}).toString()).toBe('{}');
  });

  test('top-level raw members: exact bytes, escaped keys, last duplicate wins', () => {
    const m = topLevelRawMembers(Buffer.from('{ "a" : [1, {"b": "]}"}] , "os":"x", "con\\u0066ig": {"k" : 2}, "os" : "linux", "n": -1.0e5 }'));
    expect(m.get('a')!.toString()).toBe('[1, {"b": "]}"}]');
    expect(m.get('os')!.toString()).toBe('"linux"');
    expect(m.get('config')!.toString()).toBe('{"k" : 2}');
    expect(m.get('n')!.toString()).toBe('-1.0e5');
    expect(topLevelRawMembers(Buffer.from(' {} ')).size).toBe(0);
  });
});

describe('legacy layer IDs', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const d0 = 'sha256:0a46cf3d9bc864366d06c38fa7265860b56592f257129a28a6c86a53ce6013f7';
  const d1 = 'sha256:ba94f7c71a329a92550d6162742fe1057682a50ad4823555602c13545ff2ba07';
  // The seven values as skopeo 1.9.3's archive holds them, pretty-printed differently here on purpose.
  const config = Buffer.from(`{
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-01-02T03:04:05Z",
    "config": { "Env": [ "PATH=/usr/bin:/bin", "X=a<b&c>d", "U=caf\\u00e9 ü" ], "Cmd": [ "/bin/hi" ],
                "Labels": { "z.last": "1", "a.first": "2" } },
    "rootfs": { "type": "layers", "diff_ids": [ "${d0}", "${d1}", "${d0}" ] }
  }`);

  test('the IDs of the spec archive (A.7), including the top layer from the config values', () => {
    const l = legacyLayers([d0, d1, d0], config);
    expect(l[0]!.id).toBe(sha(`{"layer_id":"${d0}"}`));
    expect(l[0]!.id).toBe('802212f608a1ed636021c4c410905b1f039406f3cc837e1076c07bfdd14a6594');
    expect(l[1]!.id).toBe('424f92e4b7145a910cc55033af9788574e3f8b99c5fe3ff274c3ebcf16700a73');
    expect(l[2]!.id).toBe('3c081dd607d5ce0bcfac09a18bab406085c55fe7bb45f46647db78dfb0427378');
    expect(l[0]!.json.toString()).toBe(`{"id":"${l[0]!.id}"}`);
    expect(l[1]!.json.toString()).toBe(`{"id":"${l[1]!.id}","parent":"${l[0]!.id}"}`);
    expect(l[2]!.json.toString()).toBe(
      '{"architecture":"amd64","config":{"Env":["PATH=/usr/bin:/bin","X=a\\u003cb\\u0026c\\u003ed","U=caf\\u00e9 ü"],"Cmd":["/bin/hi"],' +
        '"Labels":{"z.last":"1","a.first":"2"}},"container":null,"container_config":null,"created":"2024-01-02T03:04:05Z",' +
        `"docker_version":null,"id":"${l[2]!.id}","os":"linux","parent":"${l[1]!.id}"}`,
    );
    expect(l[2]!.json.length).toBe(421); // size in skopeo 1.9.3's tar listing
    expect(legacyLayers([], config)).toEqual([]);
  });
});
