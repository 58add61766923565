import { describe, expect, it } from 'vitest';
import { parsePyIsoTime, parseStreamConf } from '../../src/nix/stream/conf.js';
import { PyNumber, pyJsonDumps, pyJsonParse, pyNumberRepr, pyRepr, pyListRepr } from '../../src/nix/stream/py-json.js';

// Expected strings below are what CPython 3.11 prints for the same inputs.
describe('Python json / repr compatibility', () => {
  it('keeps key order, including integer-like keys, and exact big integers', () => {
    const text = '{"b": 1, "8080": {}, "a": [123456789012345678901234567890, -0, 1.0, 1e16, 1.5e-5, 0.0001, 100000.0, 2.5e300], "dup": 1, "dup": 2}';
    expect(pyJsonDumps(pyJsonParse(text))).toBe(
      '{\n    "b": 1,\n    "8080": {},\n    "a": [\n        123456789012345678901234567890,\n        0,\n        1.0,\n        1e+16,\n        1.5e-05,\n        0.0001,\n        100000.0,\n        2.5e+300\n    ],\n    "dup": 2\n}',
    );
  });
  it('escapes like ensure_ascii=True', () => {
    expect(pyJsonDumps(pyJsonParse('["é 🚀 \\u0001\\u001f\\u007f \\"\\\\ / <&> \\t\\n"]'))).toBe(
      '[\n    "\\u00e9 \\ud83d\\ude80 \\u0001\\u001f\\u007f \\"\\\\ / <&> \\t\\n"\n]',
    );
  });
  it('float repr', () => {
    const r = (s: string) => pyNumberRepr(new PyNumber(s, false));
    expect([r('0.1'), r('-2.0'), r('1e22'), r('123456789012345678.0'), r('0.00001234')]).toEqual([
      '0.1',
      '-2.0',
      '1e+22',
      '1.2345678901234568e+17',
      '1.234e-05',
    ]);
  });
  it('str repr as print() shows lists', () => {
    expect(pyListRepr(['/nix/store/a-b', "it's", 'tab\there', 'é🚀', '\u0085'])).toBe(`['/nix/store/a-b', "it's", 'tab\\there', 'é🚀', '\\x85']`);
    expect(pyRepr(`both ' and "`)).toBe(`'both \\' and "'`);
  });
});

describe('conf times (datetime.fromisoformat / isoformat / timestamp)', () => {
  it.each([
    ['1970-01-01T00:00:01+00:00', '1970-01-01T00:00:01+00:00', 1],
    ['1970-01-01T00:00:01Z', '1970-01-01T00:00:01+00:00', 1],
    ['2024-02-29T18:04:56+05:30', '2024-02-29T18:04:56+05:30', 1709210096],
    ['2100-01-01T00:00:00+00:00', '2100-01-01T00:00:00+00:00', 4102444800],
    ['2020-05-06T07:08:09.5-02:00', '2020-05-06T07:08:09.500000-02:00', 1588756089.5],
    ['2020-05-06T07:08:09,25+01:00', '2020-05-06T07:08:09.250000+01:00', 1588745289.25],
    ['2020-05-06T07:08:09.1234567+00:00', '2020-05-06T07:08:09.123456+00:00', 1588748889.123456],
    ['1969-12-31T23:59:59.5+00:00', '1969-12-31T23:59:59.500000+00:00', -0.5],
  ])('%s', (input, iso, epoch) => {
    const t = parsePyIsoTime(input, 'created');
    expect(t.iso).toBe(iso);
    expect(t.epochSeconds).toBeCloseTo(epoch, 6);
  });
  it('rejects junk and impossible dates', () => {
    expect(() => parsePyIsoTime('yesterday', 'created')).toThrow(/created/);
    expect(() => parsePyIsoTime('2023-02-29T00:00:00Z', 'created')).toThrow(/not a valid/);
  });
});

describe('parseStreamConf', () => {
  const good = {
    architecture: 'amd64',
    config: {},
    os: 'linux',
    variant: '',
    store_dir: '/nix/store',
    from_image: null,
    store_layers: [['/nix/store/a-x']],
    customisation_layer: '/nix/store/c-layer',
    repo_tag: 'x:y',
    created: 'now',
    mtime: '1970-01-01T00:00:01.9+00:00',
    uid: ' 1_000 ',
    gid: 100,
    uname: 'u',
    gname: 'g',
  };
  it('reads ints like int() and truncates mtime like int(timestamp())', () => {
    const c = parseStreamConf(JSON.stringify(good), 'c', new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 123)));
    expect([c.uid, c.gid, c.mtime]).toEqual([1000, 100, 1]);
    expect(c.created.iso).toBe('2025-01-02T03:04:05.123000+00:00');
  });
  it('mtime "now" is the same instant as created', () => {
    const c = parseStreamConf(JSON.stringify({ ...good, mtime: 'now' }), 'c', new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 999)));
    expect(c.mtime).toBe(Math.trunc(Date.UTC(2025, 0, 2, 3, 4, 5) / 1000));
  });
  it.each([
    ['architecture', undefined, /missing key "architecture"/],
    ['store_layers', [['/elsewhere/a']], /not under store_dir/],
    ['store_layers', ['/nix/store/a'], /store_layers\[0\]/],
    ['config', [], /"config" must be an object/],
    ['gid', 'x', /"gid" must be an integer/],
    ['from_image', 5, /from_image/],
  ])('rejects %s = %j', (key, value, msg) => {
    const c: Record<string, unknown> = { ...good };
    if (value === undefined) delete c[key];
    else c[key] = value;
    expect(() => parseStreamConf(JSON.stringify(c), 'c')).toThrow(msg);
  });
});
