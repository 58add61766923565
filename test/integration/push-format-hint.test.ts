import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../../mock-registry/index.js';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { errorLines, runCli } from '../helpers/cli.js';

// A registry that stores only OCI media types (zot without docker compatibility) answers a Docker manifest PUT
// with 415: the one line says to push with --format oci.
const CASE = join(FIXTURES, 'cases/a-defaults');

let storeRoot: string;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-format-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('a registry refusing Docker media types', () => {
  it("zot's 400 MANIFEST_INVALID 'unsupported media type' also names --format oci, and --format oci then works", async () => {
    const reg = await startRegistry({ quirks: 'zot' });
    try {
      const opts = {
        confFile: join(CASE, 'conf.json'),
        destination: `docker://${reg.host}/oci/app:1`,
        storeRoot,
        tlsVerify: false,
        cache: new PushCache(join(tmp, 'z')),
      };
      const err = await pushConf(opts).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      const msg = (err as Error).message;
      expect(msg).toContain('HTTP 400');
      expect(msg).toContain('--format oci');
      expect(msg.includes('\n')).toBe(false);
      await expect(pushConf({ ...opts, format: 'oci' })).resolves.toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
    } finally {
      await reg.close();
    }
  });

  it('fails with one line naming --format oci', async () => {
    const reg = await startRegistry({ faults: [{ kind: 'status', route: 'manifest', method: 'PUT', status: 415 }] });
    try {
      const err = await pushConf({
        confFile: join(CASE, 'conf.json'),
        destination: `docker://${reg.host}/oci/app:1`,
        storeRoot,
        tlsVerify: false,
        cache: new PushCache(join(tmp, 'c')),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      const msg = (err as Error).message;
      expect(msg).toContain('--format oci');
      expect(msg).toContain('415');
      expect(msg.includes('\n')).toBe(false);
    } finally {
      await reg.close();
    }
  });

  it('--format auto: a Docker manifest refused for its media types is PUT again as OCI; the blobs stay, nothing is uploaded twice', async () => {
    const zot = await startRegistry({ quirks: 'zot' });
    const plain = await startRegistry();
    try {
      const base = { confFile: join(CASE, 'conf.json'), storeRoot, tlsVerify: false };
      const oci = await pushConf({ ...base, destination: `docker://${plain.host}/oci/app:1`, format: 'oci', cache: new PushCache(join(tmp, 'auto-ref')) });
      const lines: string[] = [];
      const r = await pushConf({
        ...base,
        destination: `docker://${zot.host}/oci/app:1`,
        format: 'auto',
        cache: new PushCache(join(tmp, 'auto')),
        log: (l) => lines.push(l),
      });
      expect(r.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(r.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
      expect(r.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);
      expect(r.digest).toBe(oci.digest); // the same manifest a --format oci push writes
      expect(lines.some((l) => /refused Docker media types.*OCI/.test(l))).toBe(true);
      const puts = zot.log.filter((e) => e.route === 'manifest' && e.method === 'PUT');
      expect(puts.map((e) => e.status)).toEqual([400, 201]);
      expect(zot.log.filter((e) => e.route === 'upload' && e.method === 'POST').length).toBe(r.layers.length + 1); // each blob once
      // a zstd push with --format auto is OCI from the start (Docker schema2 has no zstd layer type)
      const z = await pushConf({
        ...base,
        destination: `docker://${plain.host}/oci/zstd:1`,
        format: 'auto',
        compression: 'zstd',
        cache: new PushCache(join(tmp, 'auto-z')),
      });
      expect(z.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      // and against a registry that takes Docker types, auto is docker
      const d = await pushConf({ ...base, destination: `docker://${plain.host}/oci/docker:1`, format: 'auto', cache: new PushCache(join(tmp, 'auto-d')) });
      expect(d.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    } finally {
      await zot.close();
      await plain.close();
    }
  });

  it('nixreg push --format auto --platform-conf into zot: every image and the index go up as OCI, in one line-free run', async () => {
    const zot = await startRegistry({ quirks: 'zot' });
    try {
      const conf = JSON.parse(readFileSync(join(CASE, 'conf.json'), 'utf8'));
      const armConf = join(tmp, 'conf-arm64.json');
      writeFileSync(armConf, JSON.stringify({ ...conf, architecture: 'arm64' }));
      const r = await runCli(
        [
          'push',
          `docker://${zot.host}/oci/multi:1`,
          '--platform-conf',
          `linux/amd64=${join(CASE, 'conf.json')}`,
          '--platform-conf',
          `linux/arm64=${armConf}`,
          '--store-root',
          storeRoot,
          '--tls-verify=false',
          '--json',
          '--format',
          'auto',
        ],
        { cacheHome: join(tmp, 'cli-cache') },
      );
      expect(errorLines(r.stderr)).toEqual([]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).mediaType).toBe('application/vnd.oci.image.index.v1+json');
      // the first image is refused once as Docker; the second goes up as OCI straight away
      const puts = zot.log.filter((e) => e.route === 'manifest' && e.method === 'PUT').map((e) => e.status);
      expect(puts).toEqual([400, 201, 201, 201]);
    } finally {
      await zot.close();
    }
  });
});
