import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// Quay refuses the uncompressed Docker layer type application/vnd.docker.image.rootfs.diff.tar ("manifest invalid",
// https://github.com/containers/image/issues/1270), and says so only at the manifest, after every blob went up.
// The mock's quay profile refuses it the same way.
const CASE = join(FIXTURES, 'cases/a-defaults');
const UNCOMPRESSED_DOCKER = 'application/vnd.docker.image.rootfs.diff.tar';

let tmp: string;
let storeRoot: string;
let reg: Registry;
let n = 0;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-quay-none-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startRegistry({ quirks: 'quay', auth: { mode: 'none', users: { ci: 'ci-password' } } });
}, 120_000);
afterAll(async () => {
  await reg?.close();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const push = (repo: string, ...flags: string[]) =>
  runCli(
    [
      'push',
      join(CASE, 'conf.json'),
      `docker://${reg.host}/${repo}:1`,
      '--store-root',
      storeRoot,
      '--tls-verify=false',
      '--compression',
      'none',
      '--creds',
      'ci:ci-password',
      ...flags,
    ],
    {
      cacheHome: join(tmp, `cache-${n++}`),
    },
  );

describe('--compression none against Quay', () => {
  it('--format docker: one line before any upload names the layer type and --format oci; the refusal names --format oci too', async () => {
    reg.log.length = 0;
    const r = await push('none/docker', '--format', 'docker');
    expect(r.status).toBe(1);
    const lines = r.stderr.split('\n');
    const hint = lines.findIndex((l) => l.includes(UNCOMPRESSED_DOCKER) && l.includes('--format oci') && !l.startsWith('nixreg:'));
    expect(hint, r.stderr).toBeGreaterThanOrEqual(0);
    expect(hint).toBeLessThan(lines.findIndex((l) => /config|pushed|exists|sha256:/.test(l)));
    const errors = errorLines(r.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('--format oci');
  }, 120_000);

  it('--format auto: the image goes up as OCI at once, its manifest PUT never refused', async () => {
    reg.log.length = 0;
    const r = await push('none/auto', '--format', 'auto', '--json', '--quiet');
    expect(r.status, r.stderr).toBe(0);
    const digest = JSON.parse(r.stdout).digest as string;
    expect(reg.storage.hasManifest('none/auto', digest)).toBe(true);
    const puts = reg.log.filter((e) => e.route === 'manifest' && e.method === 'PUT');
    expect(puts.map((e) => [e.status, e.headers['content-type']])).toEqual([[201, 'application/vnd.oci.image.manifest.v1+json']]);
    const manifest = JSON.parse(reg.storage.resolve('none/auto', digest)!.body.toString('utf8')) as { layers: Array<{ mediaType: string }> };
    expect(new Set(manifest.layers.map((l) => l.mediaType))).toEqual(new Set(['application/vnd.oci.image.layer.v1.tar']));
  }, 120_000);
});
