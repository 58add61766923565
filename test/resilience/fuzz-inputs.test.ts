import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveCredentials } from '../../src/registry/auth/credentials.js';
import { parseStreamConf } from '../../src/nix/stream/conf.js';
import { loadBaseImage } from '../../src/nix/stream/base-image.js';
import { streamImageToFile } from '../../src/nix/stream/index.js';
import { FC, expectCleanError, expectNixregErrorOrValue, expectNixregErrorOrValueAsync, withDeadline } from './fuzz-helpers.js';

/**
 * Bad-input fuzzing of what nixreg reads from files: docker/containers auth files, streamLayeredImage confs,
 * and tar archives given as from_image (path traversal, escaping symlinks, huge/garbage headers, truncation).
 * Property: parse, or NixregError in one short line; never a hang; nothing written outside the output file.
 */
let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-fuzz-inputs-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const anyText = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }));
const weird = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  anyText,
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.integer(), { maxLength: 3 }),
);
const SECRET = 'S3cr3t-fuzz-password';

describe('auth files (docker config.json, containers auth.json, ~/.dockercfg)', () => {
  const entry = fc.record(
    {
      auth: fc.oneof(
        fc.constant(Buffer.from(`user:${SECRET}`).toString('base64')),
        fc.constant(Buffer.from(SECRET).toString('base64')),
        fc.constant('!!notbase64'),
        weird,
      ),
      username: fc.oneof(fc.constant('user'), weird),
      password: fc.oneof(fc.constant(SECRET), weird),
      identitytoken: fc.oneof(fc.constant(SECRET + '-idtoken'), weird),
    },
    { requiredKeys: [] },
  );
  const key = fc.constantFrom('reg.example', 'https://reg.example/v1/', 'reg.example/ns/repo', 'docker.io', 'other.example', '', '__proto__', 'constructor');
  const file = fc.record(
    {
      auths: fc.oneof(fc.dictionary(key, fc.oneof(entry, weird), { maxKeys: 4 }), weird),
      credHelpers: fc.oneof(fc.dictionary(key, fc.oneof(fc.constant('nosuchhelper'), weird), { maxKeys: 2 }), weird),
      credsStore: fc.oneof(fc.constant('nosuchstore'), weird),
    },
    { requiredKeys: [] },
  );
  const fileText = fc.oneof(
    file.map((f) => JSON.stringify(f)),
    fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
    fc.constant(`{"auths": {"reg.example": {"password": "${SECRET}"`), // truncated: must not echo the secret
    fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a).toString('latin1')),
  );

  it('resolve or fail in one line, never quoting a secret', async () => {
    const dir = join(root, 'auth');
    mkdirSync(dir, { recursive: true });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fileText, fc.boolean(), async (text, legacy) => {
        const home = join(dir, `h${n++}`);
        mkdirSync(home, { recursive: true });
        const path = legacy ? join(home, '.dockercfg') : join(home, 'auth.json');
        writeFileSync(path, text);
        const env = { HOME: home, PATH: join(root, 'no-helpers'), XDG_RUNTIME_DIR: join(home, 'run') };
        let c: Awaited<ReturnType<typeof resolveCredentials>> | undefined;
        try {
          c = await resolveCredentials({ registry: 'reg.example', repository: 'ns/repo', ...(legacy ? {} : { authfile: path }), env, home });
        } catch (err) {
          expectCleanError(err);
          expect(err.message).not.toContain(SECRET);
        }
        if (c) {
          expect(typeof c.source).toBe('string');
          for (const v of [c.username, c.password, c.identityToken]) if (v !== undefined) expect(typeof v).toBe('string');
        }
      }),
      { ...FC, numRuns: 200 },
    );
  });
});

describe('streamLayeredImage confs', () => {
  const valid: Record<string, unknown> = {
    architecture: 'amd64',
    config: { Env: ['A=b'] },
    store_dir: '/nix/store',
    from_image: null,
    store_layers: [['/nix/store/aaaa-x']],
    customisation_layer: '/nix/store/bbbb-c',
    repo_tag: 'x:y',
    created: '1970-01-01T00:00:01+00:00',
    mtime: '1970-01-01T00:00:01+00:00',
    uid: 0,
    gid: '0',
    uname: 'root',
    gname: 'root',
  };
  const keys = Object.keys(valid);
  const timeish = fc.oneof(
    fc.constantFrom('now', '2024-02-30T00:00:00', '2024-01-01T25:00', '1970-01-01', '9999-12-31T23:59:59.9999999-23:59:59', '0000-01-01T00:00:00Z'),
    anyText,
  );
  const mutation = fc.record({
    drop: fc.subarray(keys, { maxLength: 2 }),
    set: fc.dictionary(
      fc.constantFrom(...keys),
      fc.oneof(
        weird,
        timeish,
        fc.constantFrom(' 1_000 ', '+5', '99999999999999999999', -1),
        fc.array(fc.oneof(weird, fc.array(anyText, { maxLength: 3 })), { maxLength: 3 }),
      ),
      { maxKeys: 3 },
    ),
  });

  it('parse or fail in one line naming the key', () => {
    fc.assert(
      fc.property(mutation, ({ drop, set }) => {
        const conf: Record<string, unknown> = { ...valid, ...set };
        for (const k of drop) delete conf[k];
        expectNixregErrorOrValue(() => parseStreamConf(JSON.stringify(conf), 'conf.json', new Date(0)));
      }),
      FC,
    );
  });

  it('arbitrary text, deep nesting and duplicate keys', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyText,
          fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
        ),
        (t) => {
          expectNixregErrorOrValue(() => parseStreamConf(t, 'conf.json'));
        },
      ),
      FC,
    );
    for (const k of ['uid', 'created', 'store_layers', 'store_dir'])
      expectNixregErrorOrValue(() =>
        parseStreamConf(JSON.stringify({ ...valid, [k]: k === 'store_layers' ? [['/x'.repeat(1 << 16)]] : 'x'.repeat(1 << 20) }), 'conf.json'),
      );
    const deep = '{"config": ' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    expectNixregErrorOrValue(() => parseStreamConf(deep, 'conf.json'));
    const dup = JSON.stringify(valid).replace('"uid":0', '"uid":0,"uid":"x"');
    expect(() => parseStreamConf(dup, 'conf.json')).toThrow('conf.json: key "uid" must be an integer or a string holding one, got "x"');
  });
});

// ---------------------------------------------------------------- tar inputs

/** A ustar header (plus data), fields given raw so the generator can break any of them. */
function tarEntry(o: { name: string; size?: number; sizeField?: Buffer; type?: string; linkname?: string; data?: Buffer; badChecksum?: boolean }): Buffer {
  const h = Buffer.alloc(512);
  Buffer.from(o.name, 'utf8').copy(h, 0, 0, 100);
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  const data = o.data ?? Buffer.alloc(0);
  if (o.sizeField) o.sizeField.copy(h, 124, 0, 12);
  else h.write((o.size ?? data.length).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(o.type ?? '0', 156, 'latin1');
  Buffer.from(o.linkname ?? '', 'utf8').copy(h, 157, 0, 100);
  h.write('ustar\0' + '00', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write((o.badChecksum ? sum + 1 : sum).toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([h, data, Buffer.alloc(pad)]);
}

function paxEntry(records: string): Buffer {
  return tarEntry({ name: 'PaxHeader', type: 'x', data: Buffer.from(records) });
}

/** A docker-archive base image with one layer, whose members the generator then corrupts. */
function baseImage(layerName: string, layer: Buffer): Buffer[] {
  const diff = 'sha256:' + createHash('sha256').update(layer).digest('hex');
  const config = Buffer.from(JSON.stringify({ config: { Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: [diff] } }));
  const manifest = Buffer.from(JSON.stringify([{ Config: 'cfg.json', RepoTags: ['b:1'], Layers: [layerName] }]));
  return [tarEntry({ name: 'cfg.json', data: config }), tarEntry({ name: layerName, data: layer }), tarEntry({ name: 'manifest.json', data: manifest })];
}

describe('tar archives as from_image', () => {
  const nasty = fc.constantFrom('../../etc/passwd', '/etc/shadow', 'a/../../b', '..', '.', '', './manifest.json', 'x'.repeat(99) + '/', 'é/🚀');
  const innerLayer = fc
    .array(
      fc.record({
        name: nasty,
        type: fc.constantFrom('0', '2', '1', '5', 'L', 'x', 'g', 'S', '7', '\0'),
        linkname: fc.constantFrom('/', '/etc/passwd', '../../..', ''),
      }),
      { maxLength: 4 },
    )
    .map((es) => Buffer.concat([...es.map((e) => tarEntry(e)), Buffer.alloc(1024)]));
  const corruption = fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({
      kind: fc.constant('size' as const),
      field: fc.oneof(
        fc
          .constantFrom('77777777777\0', '\x80\0\0\0\0\0\0\0\0\0\x10\0', '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff', 'zzzz', '-1', ' 12 ')
          .map((s) => Buffer.from(s, 'latin1')),
        fc.uint8Array({ minLength: 12, maxLength: 12 }).map((a) => Buffer.from(a)),
      ),
    }),
    fc.record({
      kind: fc.constant('pax' as const),
      records: fc.oneof(
        fc.constantFrom('30 size=99999999999999999999\n', '11 size=-5\n', '14 size=banana\n', '999 path=x\n', '5 \n', 'x', '10 path\n'),
        anyText,
      ),
    }),
    fc.record({ kind: fc.constant('checksum' as const) }),
    fc.record({ kind: fc.constant('gzip' as const), cut: fc.nat() }),
    fc.record({ kind: fc.constant('none' as const) }),
  );

  function build(layer: Buffer, c: fc.Value<typeof corruption>): Buffer {
    const parts = baseImage('layer.tar', layer);
    switch (c.kind) {
      case 'size':
        parts[1] = tarEntry({ name: 'layer.tar', data: layer, sizeField: c.field });
        break;
      case 'pax':
        parts.splice(1, 0, paxEntry(c.records));
        break;
      case 'checksum':
        parts[2] = tarEntry({ name: 'manifest.json', data: Buffer.from('[]'), badChecksum: true });
        break;
    }
    let tar = Buffer.concat([...parts, Buffer.alloc(1024)]);
    if (c.kind === 'truncate') tar = tar.subarray(0, c.at % (tar.length + 1));
    if (c.kind === 'flip') {
      tar = Buffer.from(tar);
      tar[c.at % tar.length] ^= c.xor;
    }
    if (c.kind === 'gzip') {
      const z = gzipSync(tar);
      tar = z.subarray(0, Math.max(2, c.cut % (z.length + 1)));
    }
    return tar;
  }

  it('loadBaseImage parses or fails in one line, without hanging', async () => {
    const dir = join(root, 'tars');
    mkdirSync(dir, { recursive: true });
    let n = 0;
    const outcomes = { ok: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(innerLayer, corruption, async (layer, c) => {
        const file = join(dir, `base-${n++}.tar`);
        writeFileSync(file, build(layer, c));
        outcomes.failed++;
        await withDeadline(
          expectNixregErrorOrValueAsync(async () => {
            const b = await loadBaseImage(file);
            // Read every layer fully: truncation inside a member only shows here.
            for (const l of b.layers) for await (const _ of b.archive.openMemberData(l.member));
            outcomes.failed--;
            outcomes.ok++;
          }),
          10_000,
          `base image with ${c.kind}`,
        );
      }),
      { ...FC, numRuns: 250 },
    );
    // The generator must reach both sides, or the property proves nothing.
    expect(outcomes.ok).toBeGreaterThan(25);
    expect(outcomes.failed).toBeGreaterThan(25);
  });

  it('streaming a conf whose from_image is hostile writes only the output file', async () => {
    const storeRoot = join(root, 'store-root');
    const store = join(storeRoot, 'nix', 'store');
    const cust = join(store, 'cccccccccccccccccccccccccccccccc-customisation');
    mkdirSync(cust, { recursive: true });
    const custTar = Buffer.concat([tarEntry({ name: 'etc/hello', data: Buffer.from('hi\n') }), Buffer.alloc(1024)]);
    writeFileSync(join(cust, 'layer.tar'), custTar);
    writeFileSync(join(cust, 'checksum'), createHash('sha256').update(custTar).digest('hex'));
    const outDir = join(root, 'out');
    mkdirSync(outDir);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(innerLayer, corruption, async (layer, c) => {
        const baseName = `bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-base-${n++}.tar`;
        writeFileSync(join(store, baseName), build(layer, c));
        const conf = parseStreamConf(
          JSON.stringify({
            architecture: 'amd64',
            config: {},
            store_dir: '/nix/store',
            from_image: `/nix/store/${baseName}`,
            store_layers: [],
            customisation_layer: '/nix/store/cccccccccccccccccccccccccccccccc-customisation',
            repo_tag: 'fuzz:1',
            created: '1970-01-01T00:00:01+00:00',
            mtime: '1970-01-01T00:00:01+00:00',
            uid: 0,
            gid: 0,
            uname: '',
            gname: '',
          }),
        );
        const before = readdirSync(store).length;
        const target = join(outDir, 'image.tar');
        let ok = false;
        await withDeadline(
          expectNixregErrorOrValueAsync(async () => {
            await streamImageToFile(conf, target, { storeRoot, force: true });
            ok = true;
          }),
          10_000,
          `stream with ${c.kind}`,
        );
        // Only the output (when it succeeded), no temp files, nothing new in the store tree or its parents.
        expect(readdirSync(outDir)).toEqual(ok ? ['image.tar'] : []);
        expect(readdirSync(store).length).toBe(before);
        expect(readdirSync(root).sort()).toEqual(['auth', 'out', 'store-root', 'tars'].filter((d) => readdirSync(root).includes(d)).sort());
        rmSync(target, { force: true });
      }),
      { ...FC, numRuns: 120 },
    );
  });
});
