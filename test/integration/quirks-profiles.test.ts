import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type LogEntry, type Registry } from '../../mock-registry/index.js';
import { QUIRK_PROFILES } from '../../mock-registry/quirks-profiles.js';
import { sampleImage, type SampleImage } from '../../mock-registry/sample-image.js';
import { runCli } from '../helpers/cli.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// The bundled CLI against each quirk profile of the mock: pull (byte-identical to a pull of the same image from the
// plain mock), prefetch (the same hash) and push of a fixture conf (the same manifest digest as on the plain mock,
// stored in the quirky registry). Profiles with a mount refusal push twice, so the second push tries a mount.
const CASE = join(FIXTURES, 'cases/a-defaults');
const CREDS = ['--creds', 'ci:ci-password'];
const USERS = { ci: 'ci-password' };
const OCI_ONLY = new Set(['zot']);

/** The sample image as OCI media types (zot stores nothing else). */
function ociSample(img: SampleImage): { manifest: Buffer; mediaType: string } {
  const doc = JSON.parse(img.manifest.toString('utf8'));
  doc.mediaType = 'application/vnd.oci.image.manifest.v1+json';
  doc.config.mediaType = 'application/vnd.oci.image.config.v1+json';
  doc.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
  return { manifest: Buffer.from(JSON.stringify(doc)), mediaType: doc.mediaType };
}

async function seed(reg: Registry, oci: boolean): Promise<void> {
  const img = sampleImage('quirk profiles: the same bytes everywhere');
  await reg.putBlob('q/app', img.layer);
  await reg.putBlob('q/app', img.config);
  const m = oci ? ociSample(img) : { manifest: img.manifest, mediaType: img.mediaType };
  await reg.putManifest('q/app', 'v1', m.manifest, m.mediaType);
}

let tmp: string;
let storeRoot: string;
let plain: Registry;
let cacheN = 0;
const cli = (args: string[]) => runCli(args, { cacheHome: join(tmp, `cache-${cacheN++}`) });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-quirks-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  plain = await startRegistry();
}, 120_000);
afterAll(async () => {
  await plain?.close();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** pull to a file; returns its bytes */
async function pull(reg: Registry, out: string): Promise<Buffer> {
  const r = await cli(['pull', `${reg.host}/q/app:v1`, '--tls-verify=false', '--final-image-name', 'q/app', '-o', out, ...CREDS]);
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out);
}

async function prefetch(reg: Registry): Promise<string> {
  // the archive names the image, so the registry's port would change the hash: name it
  const r = await cli(['prefetch', `${reg.host}/q/app`, 'v1', '--tls-verify=false', '--final-image-name', 'q/app', '--json', '--quiet', ...CREDS]);
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { hash: string; finalImageName: string };
  expect(out.finalImageName).toBe('q/app');
  return out.hash;
}

async function push(reg: Registry, repo: string, format: string, cacheHome = join(tmp, `cache-${cacheN++}`)): Promise<string> {
  const args = [
    'push',
    join(CASE, 'conf.json'),
    `docker://${reg.host}/${repo}:1`,
    '--store-root',
    storeRoot,
    '--tls-verify=false',
    '--json',
    '--format',
    format,
    ...CREDS,
  ];
  const r = await runCli(args, { cacheHome });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).digest as string;
}

/** What each profile's quirk looks like in the request log of the pull, prefetch and push above. */
const MET: Record<string, (reg: Registry, log: LogEntry[]) => Promise<void> | void> = {
  ghcr: (_r, log) => expect(log.some((e) => e.route === 'token') && log.some((e) => e.auth === 'bearer')).toBe(true),
  ecr: (_r, log) => {
    expect(log.some((e) => e.method === 'PATCH' && e.status === 201)).toBe(true);
    expect(log.filter((e) => e.route === 'manifest').every((e) => e.auth === 'basic' || e.status === 401)).toBe(true);
  },
  gar: (_r, log) => {
    const uploads = log.filter((e) => e.route === 'upload' && e.method !== 'POST');
    expect(uploads.length).toBeGreaterThan(0);
    expect(uploads.every((e) => e.url.startsWith('/artifacts-uploads/v2/') && e.url.includes('upload_token='))).toBe(true);
    expect(uploads.every((e) => e.status < 300)).toBe(true);
  },
  acr: (_r, log) => expect(log.some((e) => e.route === 'manifest' && e.method === 'PUT' && e.status === 429)).toBe(true),
  dockerhub: async (r) => {
    const challenge = (await fetch(`${r.url}/v2/`)).headers.get('www-authenticate') ?? '';
    expect(new URL(/realm="([^"]+)"/.exec(challenge)![1]!).port).not.toBe(String(r.port));
    expect(r.counters.tokensIssued).toBeGreaterThan(0);
  },
  quay: (_r, log) => expect(log.some((e) => e.route === 'manifest' && e.method === 'PUT' && e.status === 201)).toBe(true),
  harbor: (_r, log) => expect(log.some((e) => e.auth === 'bearer')).toBe(true),
  gitlab: (_r, log) => expect(log.some((e) => e.auth === 'bearer')).toBe(true),
  zot: (_r, log) =>
    expect(
      log.some((e) => e.route === 'manifest' && e.method === 'PUT' && e.status === 201 && e.headers['content-type']?.startsWith('application/vnd.oci.')),
    ).toBe(true),
};

describe.each(Object.keys(QUIRK_PROFILES))('--quirks %s', (name) => {
  const oci = OCI_ONLY.has(name);
  const format = oci ? 'oci' : 'docker';
  let reg: Registry;
  let reference: { archive: Buffer; hash: string; pushed: string };
  beforeAll(async () => {
    reg = await startRegistry({ quirks: name, auth: { mode: 'none', users: USERS } });
    await seed(reg, oci);
    const ref = await startRegistry();
    try {
      await seed(ref, oci);
      reference = { archive: await pull(ref, join(tmp, `${name}-plain.tar`)), hash: await prefetch(ref), pushed: await push(ref, 'pushed/app', format) };
    } finally {
      await ref.close();
    }
  }, 180_000);
  afterAll(() => reg?.close());

  it('pull gives the same bytes as a pull from the plain mock', async () => {
    const archive = await pull(reg, join(tmp, `${name}.tar`));
    expect(archive.equals(reference.archive)).toBe(true);
  }, 120_000);

  it('prefetch prints the same hash', async () => {
    expect(await prefetch(reg)).toBe(reference.hash);
  }, 120_000);

  it(`push --format ${format} stores the same manifest as on the plain mock`, async () => {
    const digest = await push(reg, 'pushed/app', format);
    expect(digest).toBe(reference.pushed);
    expect(reg.storage.hasManifest('pushed/app', digest)).toBe(true);
  }, 180_000);

  if (oci)
    it('push --format auto stores the same OCI manifest, after the registry refused the Docker one', async () => {
      const before = reg.log.length;
      const digest = await push(reg, 'auto/app', 'auto');
      expect(digest).toBe(reference.pushed);
      expect(reg.storage.hasManifest('auto/app', digest)).toBe(true);
      const puts = reg.log.slice(before).filter((e) => e.route === 'manifest' && e.method === 'PUT');
      expect(puts.map((e) => [e.status < 300, e.headers['content-type']?.startsWith('application/vnd.oci.')])).toEqual([
        [false, false],
        [true, true],
      ]);
    }, 180_000);

  it('the profile showed its quirks on the wire', async () => {
    await MET[name]!(reg, reg.log);
  });

  if (QUIRK_PROFILES[name]!.mountAuthFailure)
    it(`a second push to another repository survives the ${QUIRK_PROFILES[name]!.mountAuthFailure} on the mount it tries`, async () => {
      const cacheHome = join(tmp, `mount-cache-${name}`);
      await push(reg, 'first/app', format, cacheHome);
      reg.resetCounters();
      const digest = await push(reg, 'second/app', format, cacheHome);
      expect(digest).toBe(reference.pushed);
      expect(reg.storage.hasManifest('second/app', digest)).toBe(true);
      const mounts = reg.log.filter((e) => e.method === 'POST' && e.url.includes('mount='));
      expect(mounts.length).toBeGreaterThan(0);
      expect(mounts.every((e) => e.status === QUIRK_PROFILES[name]!.mountAuthFailure)).toBe(true);
    }, 180_000);
});
