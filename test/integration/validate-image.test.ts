import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, pushTestImage } from '../helpers/images.js';
import { requireTool } from '../helpers/tools.js';
import { validateImage } from '../helpers/validate-image.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { loadStreamConf, streamImageToFile } from '../../src/nix/stream/index.js';
import { writeOciDirectory } from '../../src/oci/index.js';
import { runCliSync } from '../helpers/cli.js';
import { openSource, type SourceImage } from '../../src/source/index.js';

// validateImage on every source kind, all made by real tools (distribution, skopeo) from one registry image.
const amd64 = { os: 'linux', arch: 'amd64' };
let reg: Distribution;
let work: string;

const skopeo = (...args: string[]) =>
  execFileSync('skopeo', ['--insecure-policy', '--override-os', 'linux', '--override-arch', 'amd64', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

beforeAll(async () => {
  requireTool('skopeo');
  work = mkdtempSync(join(tmpdir(), 'nixreg-validate-'));
  reg = await startDistribution();
  const img = makeImage(
    [
      { tar: LAYERS.L1(), c: 'gzip' },
      { tar: LAYERS.L2(), c: 'gzip' },
      { tar: LAYERS.L3(), c: 'none' },
    ],
    'oci',
  );
  await pushTestImage(reg.url, 'val/img', img, 'v1');
  const ref = `docker://${reg.host}/val/img:v1`;
  skopeo('copy', '--src-tls-verify=false', ref, `oci:${work}/layout:v1`);
  skopeo('copy', '--src-tls-verify=false', ref, `oci-archive:${work}/layout.tar:v1`);
  skopeo('copy', '--src-tls-verify=false', ref, `docker-archive:${work}/image.tar:val/img:v1`);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('validateImage holds for every source', () => {
  const specs = () => [`docker://${reg.host}/val/img:v1`, `oci:${work}/layout:v1`, `oci-archive:${work}/layout.tar:v1`, `docker-archive:${work}/image.tar`];
  test('registry, OCI layout, OCI archive, docker-archive', async () => {
    for (const spec of specs()) {
      const s = await openSource(spec, { platform: amd64, tlsVerify: false });
      try {
        await validateImage(s);
      } finally {
        await s.close();
      }
    }
  }, 120_000);

  test('conf:PATH, and the nixpkgs archive and OCI layout the stream sinks write from it', async () => {
    const root = await buildStoreTree();
    try {
      const confFile = join(FIXTURES, 'cases', 'a-defaults', 'conf.json');
      const out = join(work, 'stream.tar');
      await streamImageToFile(await loadStreamConf(confFile), out, { storeRoot: root });
      await writeOciDirectory(await loadStreamConf(confFile), join(work, 'stream-oci'), { storeRoot: root });
      for (const spec of [`conf:${confFile}`, `docker-archive:${out}`, `oci:${work}/stream-oci`]) {
        const s = await openSource(spec, { platform: amd64, storeRoot: root });
        try {
          await validateImage(s);
        } finally {
          await s.close();
        }
      }
    } finally {
      await removeStoreTree(root);
    }
  }, 120_000);

  test('it rejects a layer whose stored bytes are not its descriptor', async () => {
    const s = await openSource(`oci:${work}/layout:v1`, { platform: amd64 });
    try {
      const swapped = Object.create(s, { openLayer: { value: (i: number) => s.openLayer(i === 0 ? 1 : i) } }) as SourceImage;
      await expect(validateImage(swapped)).rejects.toThrow(/layer 0: stored bytes/);
    } finally {
      await s.close();
    }
  }, 60_000);

  test('after the pull sink: the docker-archive nixreg pull writes', async () => {
    const out = join(work, 'pulled.tar');
    const r = runCliSync(['pull', `${reg.host}/val/img:v1`, '-o', out, '--tls-verify=false']);
    expect(r.stderr).not.toMatch(/nixreg: /);
    expect(r.status).toBe(0);
    const s = await openSource(`docker-archive:${out}`, { platform: amd64 });
    try {
      await validateImage(s);
    } finally {
      await s.close();
    }
  }, 120_000);

  test('it rejects an image whose diffIDs disagree with its config', async () => {
    const s = await openSource(`oci:${work}/layout:v1`, { platform: amd64 });
    try {
      const lying = Object.create(s, { diffIDs: { value: [...s.diffIDs].reverse() } }) as SourceImage;
      await expect(validateImage(lying)).rejects.toThrow(/rootfs.diff_ids/);
    } finally {
      await s.close();
    }
  }, 60_000);
});
