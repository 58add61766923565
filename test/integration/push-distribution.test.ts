import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { makeSelfSignedCert } from '../helpers/tls.js';
import { startTokenServer } from '../helpers/token-server.js';
import { requireTool } from '../helpers/tools.js';

// `nixreg push conf.json docker://…` against Debian's real distribution; pulled back with skopeo and nixreg.
// Runs the built CLI (dist/ must be built: `npx tsc -p tsconfig.json`; npm test does it).
const repoRoot = join(import.meta.dirname, '../..');
const CASE = join(FIXTURES, 'cases/a-defaults');
const expected = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as {
  layers: Array<{ diffID: string; paths: string[] }>;
  config: { sha256: string };
};

let storeRoot: string;
let tmp: string;
let reg: Distribution;

function nixreg(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn('node', [join(repoRoot, 'bin/nixreg.js'), ...args], { env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache'), ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const pushArgs = (dest: string, ...extra: string[]) => [
  'push',
  join(CASE, 'conf.json'),
  dest,
  '--store-root',
  storeRoot,
  '--tls-verify=false',
  '--json',
  ...extra,
];

/** Blob-upload requests (POST/PATCH/PUT under /blobs/uploads/) in the registry's access log since `from`. */
function uploadRequests(from: number): { lines: string[]; end: number } {
  const log = readFileSync(reg.logFile, 'utf8');
  const lines = log
    .slice(from)
    .split('\n')
    .filter((l) => /"(POST|PATCH|PUT) \/v2\/[^ ]*\/blobs\/uploads\//.test(l));
  return { lines, end: log.length };
}
const logEnd = () => readFileSync(reg.logFile, 'utf8').length;

beforeAll(async () => {
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
});
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('nixreg push (conf → real distribution)', () => {
  let pushed: { digest: string; reference: string; config: { digest: string }; layers: Array<{ diffID: string; digest: string; status: string }> };

  it('pushes every layer once, with the stream diffIDs and config', async () => {
    const before = logEnd();
    const r = await nixreg(pushArgs(`docker://${reg.host}/fixture/app:1`, '--additional-tag', 'latest', '--digestfile', join(tmp, 'digest')));
    expect(r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
    expect(r.status).toBe(0);
    pushed = JSON.parse(r.stdout);
    expect(pushed.layers.map((l) => l.diffID)).toEqual(expected.layers.map((l) => l.diffID));
    expect(pushed.config.digest).toBe(`sha256:${expected.config.sha256}`);
    expect(pushed.layers.every((l) => l.status === 'uploaded')).toBe(true);
    expect(pushed.reference).toBe(`${reg.host}/fixture/app@${pushed.digest}`);
    expect(readFileSync(join(tmp, 'digest'), 'utf8')).toBe(pushed.digest);
    // one POST + one PATCH + one PUT per layer and for the config
    const ups = uploadRequests(before).lines;
    const n = expected.layers.length + 1;
    expect(ups.filter((l) => l.includes('"PATCH ')).length).toBe(n);
    expect(ups.filter((l) => l.includes('"PUT ')).length).toBe(n);
  });

  it('pulls back with skopeo: same diffIDs, blobs that gunzip to them', () => {
    const oci = join(tmp, 'oci');
    const r = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/fixture/app:latest`, `oci:${oci}:x`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const blob = (d: string) => readFileSync(join(oci, 'blobs/sha256', d.slice(7)));
    const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8'));
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
    const config = JSON.parse(blob(manifest.config.digest).toString());
    expect(config.rootfs.diff_ids).toEqual(expected.layers.map((l) => l.diffID));
    for (const [i, l] of manifest.layers.entries()) {
      const tar = gunzipSync(blob(l.digest));
      expect('sha256:' + createHash('sha256').update(tar).digest('hex')).toBe(expected.layers[i]!.diffID);
    }
  });

  it('pulls back with nixreg pull', async () => {
    const out = join(tmp, 'pulled.tar');
    const r = await nixreg(['pull', `${reg.host}/fixture/app`, '--digest', pushed.digest, '-o', out, '--tls-verify=false', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const manifest = JSON.parse(spawnSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }).stdout);
    expect(manifest[0].Config).toBe(`${expected.config.sha256}.json`);
  });

  it('a second push uploads zero blobs and generates no layer', async () => {
    const before = logEnd();
    const r = await nixreg(pushArgs(`docker://${reg.host}/fixture/app:1`));
    expect(r.status).toBe(0);
    const again = JSON.parse(r.stdout);
    expect(again.digest).toBe(pushed.digest);
    expect(again.stats).toMatchObject({ uploaded: 0, exists: expected.layers.length, layersGenerated: 0 });
    expect(uploadRequests(before).lines).toEqual([]);
  });

  it('gzip output is the same on every push (fresh cache: same blob digests)', async () => {
    const r = await nixreg(pushArgs(`docker://${reg.host}/fixture/fresh:1`), { XDG_CACHE_HOME: join(tmp, 'cache-fresh') });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.layers.map((l: { digest: string }) => l.digest)).toEqual(pushed.layers.map((l) => l.digest));
    expect(j.digest).toBe(pushed.digest);
  });

  it('mounts cached blobs from another repository instead of uploading', async () => {
    const before = logEnd();
    const r = await nixreg(pushArgs(`docker://${reg.host}/other/app:1`));
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.stats.mounted).toBe(expected.layers.length);
    expect(j.digest).toBe(pushed.digest);
    const ups = uploadRequests(before).lines;
    expect(ups.filter((l) => l.includes('mount=')).length).toBe(expected.layers.length);
    expect(ups.filter((l) => l.includes('"PATCH ')).length).toBe(1); // the config only: never mounted
  });

  it('copies registry to registry (docker:// source), keeping the digest', async () => {
    const other = await startDistribution();
    try {
      const r = await nixreg(['push', `docker://${reg.host}/fixture/app:1`, `docker://${other.host}/copied/app:9`, '--tls-verify=false', '--quiet']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${pushed.digest}\n${other.host}/copied/app@${pushed.digest}\n`);
      const ins = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${other.host}/copied/app:9`], { encoding: 'utf8' });
      expect(ins.status).toBe(0);
      expect(JSON.parse(ins.stdout).Digest).toBe(pushed.digest);
      expect(JSON.parse(ins.stdout).Layers).toEqual(pushed.layers.map((l) => l.digest));

      // A second copy into another repository of that registry: the push cache remembers where each blob went, so
      // every blob is mounted (skopeo's blob-info cache does the same); nothing is uploaded.
      const again = await nixreg(['push', `docker://${reg.host}/fixture/app:1`, `docker://${other.host}/copied2/app:9`, '--tls-verify=false', '--json']);
      expect(again.status, again.stderr).toBe(0);
      const res = JSON.parse(again.stdout);
      expect(res.digest).toBe(pushed.digest);
      expect(res.stats).toMatchObject({ uploaded: 0, bytesUploaded: 0, mounted: pushed.layers.length + 1, exists: 0 });
      const ins2 = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${other.host}/copied2/app:9`], { encoding: 'utf8' });
      expect(JSON.parse(ins2.stdout).Digest).toBe(pushed.digest);
      // without the cache the same copy uploads every blob again
      const fresh = await nixreg(['push', `docker://${reg.host}/fixture/app:1`, `docker://${other.host}/copied3/app:9`, '--tls-verify=false', '--json'], {
        XDG_CACHE_HOME: join(tmp, 'cache-copy-fresh'),
      });
      expect(JSON.parse(fresh.stdout).stats).toMatchObject({ uploaded: pushed.layers.length + 1, mounted: 0 });
    } finally {
      await other.stop();
    }
  });

  it('--platform-conf pushes each image and an index; skopeo picks by platform', async () => {
    const conf = JSON.parse(readFileSync(join(CASE, 'conf.json'), 'utf8'));
    const armConf = join(tmp, 'conf-arm64.json');
    writeFileSync(armConf, JSON.stringify({ ...conf, architecture: 'arm64' }));
    const before = logEnd();
    const r = await nixreg([
      'push',
      `docker://${reg.host}/fixture/multi:1`,
      '--platform-conf',
      `linux/amd64=${join(CASE, 'conf.json')}`,
      '--platform-conf',
      `linux/arm64/v8=${armConf}`,
      '--store-root',
      storeRoot,
      '--tls-verify=false',
      '--json',
      '--format',
      'oci',
    ]);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(j.manifests.map((m: { platform: string }) => m.platform)).toEqual(['linux/amd64', 'linux/arm64/v8']);
    // the arm64 image shares every layer: only its config is new; each blob goes up at most once
    expect(uploadRequests(before).lines.filter((l) => l.includes('"PATCH ')).length).toBeLessThanOrEqual(2);
    for (const [arch, variant] of [
      ['amd64', ''],
      ['arm64', 'v8'],
    ] as const) {
      const args = [
        'inspect',
        '--tls-verify=false',
        '--override-arch',
        arch,
        ...(variant ? ['--override-variant', variant] : []),
        `docker://${reg.host}/fixture/multi:1`,
      ];
      const ins = spawnSync('skopeo', args, { encoding: 'utf8' });
      expect(ins.stderr).toBe('');
      expect(JSON.parse(ins.stdout).Architecture).toBe(arch);
      expect(JSON.parse(ins.stdout).Layers).toEqual(pushed.layers.map((l) => l.digest));
    }
    const bad = await nixreg([
      'push',
      `docker://${reg.host}/fixture/multi:2`,
      '--platform-conf',
      `linux/arm64=${join(CASE, 'conf.json')}`,
      '--store-root',
      storeRoot,
      '--tls-verify=false',
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^nixreg: .*architecture amd64, not arm64\n$/);
  });

  it('after one store path changes, only its layer is uploaded', async () => {
    const settings = expected.layers.find((l) => l.paths.length === 1 && l.paths[0]!.endsWith('-fx-settings.conf'))!;
    const file = join(storeRoot, settings.paths[0]!);
    const mode = statSync(file).mode & 0o7777;
    chmodSync(file, 0o644);
    writeFileSync(file, 'changed = true\n');
    chmodSync(file, mode);
    const before = logEnd();
    const r = await nixreg(pushArgs(`docker://${reg.host}/fixture/app:2`));
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.stats).toMatchObject({ uploaded: 1, exists: expected.layers.length - 1, layersGenerated: 1 });
    const changed = j.layers.findIndex((l: { status: string }) => l.status === 'uploaded');
    expect(expected.layers[changed]).toBe(settings);
    expect(j.layers[changed].diffID).not.toBe(settings.diffID);
    expect(uploadRequests(before).lines.filter((l) => l.includes('"PATCH ')).length).toBe(2); // that layer + the new config
  });
});

describe('nixreg push with token auth over TLS', () => {
  it('pushes with a push token and --cert-dir; a pull-only token fails with exit 3 and no tag', async () => {
    const cert = makeSelfSignedCert('127.0.0.1', mkdtempSync(join(tmp, 'tls-')));
    const certDir = join(tmp, 'certs');
    mkdirSync(certDir, { recursive: true });
    copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
    for (const actions of [['pull', 'push'], ['pull']]) {
      const ts = await startTokenServer({ users: { bob: 'token-pw' }, allowedActions: actions });
      const secured = await startDistribution({
        token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootCertBundle: ts.rootCertBundle },
        tls: { certFile: cert.certFile, keyFile: cert.keyFile },
      });
      try {
        const r = await nixreg(
          [
            'push',
            join(CASE, 'conf.json'),
            `docker://${secured.host}/fixture/app:1`,
            '--store-root',
            storeRoot,
            '--cert-dir',
            certDir,
            '--creds',
            'bob:token-pw',
            '--quiet',
          ],
          { XDG_CACHE_HOME: join(tmp, `cache-token-${actions.length}`) },
        );
        const log = readFileSync(secured.logFile, 'utf8');
        if (actions.includes('push')) {
          expect(r.stderr).toBe('');
          expect(r.status).toBe(0);
          expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n/); // (the store tree was changed by an earlier test)
          expect(log).toMatch(/"PUT \/v2\/fixture\/app\/manifests\/1 HTTP\/1.1" 201/);
        } else {
          expect(r.status).toBe(3);
          expect(r.stderr.trim().split('\n')).toHaveLength(1);
          expect(r.stderr).toMatch(/^nixreg: .*(insufficient_scope|denied|401|403)/);
          expect(r.stderr).not.toContain('token-pw');
          expect(log).not.toMatch(/"PUT \/v2\/fixture\/app\/manifests\//);
        }
      } finally {
        await secured.stop();
        await ts.stop();
      }
    }
  });
});

describe('nixreg push auth failures', () => {
  it('wrong credentials: one line, exit 3, no tag written', async () => {
    const secured = await startDistribution({ htpasswd: { alice: 'right-password' } });
    try {
      const r = await nixreg(pushArgs(`docker://${secured.host}/fixture/app:1`, '--creds', 'alice:wrong-password'), {
        XDG_CACHE_HOME: join(tmp, 'cache-auth'),
      });
      expect(r.status).toBe(3);
      expect(r.stdout).toBe('');
      const errLines = r.stderr.trim().split('\n');
      expect(errLines[errLines.length - 1]).toMatch(/^nixreg: .*401/);
      expect(r.stderr).not.toContain('wrong-password');
      const log = readFileSync(secured.logFile, 'utf8');
      expect(log).not.toMatch(/"PUT \/v2\/fixture\/app\/manifests\//);
      const inspect = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:right-password', `docker://${secured.host}/fixture/app:1`], {
        encoding: 'utf8',
      });
      expect(inspect.status).not.toBe(0);
      expect(inspect.stderr).toMatch(/manifest unknown|not found|name unknown/i);
    } finally {
      await secured.stop();
    }
  });
});

describe('nixreg push usage errors (exit 2, one line, before any request)', () => {
  const conf = () => join(CASE, 'conf.json');
  for (const [why, args, msg] of [
    ['zstd needs OCI', () => ['push', conf(), 'docker://127.0.0.1:1/a/b:1', '--compression', 'zstd'], /--format oci/],
    ['destination must be docker://', () => ['push', conf(), '127.0.0.1:1/a/b:1'], /docker:\/\//],
    ['destination digest', () => ['push', conf(), `docker://127.0.0.1:1/a/b@sha256:${'a'.repeat(64)}`], /names a digest/],
    ['missing conf', () => ['push', join(tmp, 'nope.json'), 'docker://127.0.0.1:1/a/b:1'], /cannot read conf/],
    ['bad level', () => ['push', conf(), 'docker://127.0.0.1:1/a/b:1', '--compression-level', '12'], /1 to 9/],
    ['bad platform', () => ['push', 'docker://127.0.0.1:1/a/b:1', '--platform-conf', 'amd64=x.json'], /OS\/ARCH/],
  ] as const) {
    it(why, async () => {
      const r = await nixreg([...args()]);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^nixreg: [^\n]*\n$/);
      expect(r.stderr).toMatch(msg);
    });
  }
});
