import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';
import { requireTool } from '../helpers/tools.js';
import { cycloneDx16Validator } from '../helpers/sbom-schemas.js';

// `nixreg push --sbom cyclonedx --provenance`: the SBOM and the SLSA provenance statement pushed as OCI artifacts
// whose subject is the pushed manifest, listed by `nixreg referrers`: on Debian's distribution 2.8 (no referrers
// API: the sha256-<hex> tag holds the list) and on the mock registry (referrers API). skopeo reads the artifacts.
const closure = `
  lib = mk "reftest-lib-1.0" "mkdir -p $out/lib && echo lib > $out/lib/libtest.so.1";
  app = mk "reftest-app-0.5" "mkdir -p $out/bin && echo \${lib} > $out/bin/hello";
`;

let tmp: string;
let app: string;
let dist: Distribution;
let mock: Registry;
const nixreg = (...args: string[]) => runCli(args, { cacheHome: join(tmp, 'cache') });
// asynchronous: the mock registry answers from this very process
const skopeo = async (...args: string[]) => (await promisify(execFile)('skopeo', args, { encoding: 'utf8' })).stdout;
const skopeoRaw = async (ref: string) => JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`));

beforeAll(async () => {
  for (const t of ['nix-build', 'skopeo']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-referrers-'));
  app = buildTestClosure(tmp, closure);
  dist = await startDistribution();
  mock = await startRegistry();
});
afterAll(async () => {
  await dist?.stop();
  await mock?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe.each([
  ['distribution 2.8 (tag schema)', () => dist.host, 'tag-schema'],
  ['mock registry (referrers API)', () => mock.host, 'referrers-api'],
])('push --sbom --provenance to %s', (_label, host, via) => {
  it('attaches both and lists them; the SBOM names every store path with its pushed layer', async () => {
    const dest = `${host()}/app`;
    const r = await nixreg('push', '--path', app, `docker://${dest}:1`, '--tls-verify=false', '--json', '--sbom', 'cyclonedx', '--provenance');
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const pushed = JSON.parse(r.stdout) as { digest: string; layers: Array<{ diffID: string; digest: string }> };
    expect(r.stderr).toContain(`(${via})`);

    const l = await nixreg('referrers', `${dest}:1`, '--tls-verify=false', '--json');
    expect(errorLines(l.stderr)).toEqual([]);
    const listed = JSON.parse(l.stdout) as { via: string; subject: string; referrers: Array<{ digest: string; artifactType: string }> };
    expect(listed.via).toBe(via);
    expect(listed.subject).toBe(`${dest}@${pushed.digest}`);
    expect(listed.referrers.map((x) => x.artifactType).sort()).toEqual(['application/vnd.cyclonedx+json', 'application/vnd.in-toto+json']);
    // push --json names what it attached, as the registry lists it
    const attached = (JSON.parse(r.stdout) as { attached?: Array<{ digest: string; artifactType: string; via: string }> }).attached ?? [];
    expect(attached.map((x) => ({ digest: x.digest, artifactType: x.artifactType })).sort((p, q) => p.artifactType.localeCompare(q.artifactType))).toEqual(
      listed.referrers.map((x) => ({ digest: x.digest, artifactType: x.artifactType })).sort((p, q) => p.artifactType.localeCompare(q.artifactType)),
    );
    expect(attached.every((x) => x.via === via)).toBe(true);

    // read the artifacts back with skopeo: subject, empty config, one layer each
    const docs: Record<string, any> = {};
    for (const ref of listed.referrers) {
      const m = await skopeoRaw(`${dest}@${ref.digest}`);
      expect(m.subject.digest).toBe(pushed.digest);
      expect(m.artifactType).toBe(ref.artifactType);
      expect(m.config).toMatchObject({ mediaType: 'application/vnd.oci.empty.v1+json', size: 2 });
      const out = join(tmp, `blob-${ref.digest.slice(7, 19)}`);
      await skopeo('copy', '--src-tls-verify=false', `docker://${dest}@${ref.digest}`, `dir:${out}`);
      docs[ref.artifactType] = JSON.parse(readFileSync(join(out, m.layers[0].digest.slice(7)), 'utf8'));
    }
    const bom = docs['application/vnd.cyclonedx+json'];
    expect(cycloneDx16Validator()(bom)).toEqual([]);
    const requisites = execFileSync('nix-store', ['--query', '--requisites', app], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    expect(bom.components.map((c: any) => c['bom-ref']).sort()).toEqual(requisites);
    const blobs = new Set(pushed.layers.map((x) => x.digest));
    for (const c of bom.components) expect(blobs.has(c.properties.find((p: any) => p.name === 'nixreg:layer_digest').value)).toBe(true);
    expect(bom.metadata.component.hashes).toEqual([{ alg: 'SHA-256', content: pushed.digest.slice(7) }]);

    const stmt = docs['application/vnd.in-toto+json'];
    expect(stmt._type).toBe('https://in-toto.io/Statement/v1');
    expect(stmt.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(stmt.subject).toEqual([{ name: dest, digest: { sha256: pushed.digest.slice(7) } }]);
    expect(stmt.predicate.buildDefinition.externalParameters.paths).toEqual([app]);
    expect(stmt.predicate.buildDefinition.resolvedDependencies.map((d: any) => d.uri).sort()).toEqual(requisites.map((p) => `file://${p}`));
    expect(stmt.predicate.runDetails.builder.version.nixreg).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a second push of the same image adds no duplicate entries', async () => {
    const dest = `${host()}/app`;
    const r = await nixreg('push', '--path', app, `docker://${dest}:1`, '--tls-verify=false', '--sbom', 'cyclonedx', '--provenance');
    expect(errorLines(r.stderr)).toEqual([]);
    const l = await nixreg('referrers', `${dest}:1`, '--tls-verify=false', '--json');
    expect(JSON.parse(l.stdout).referrers).toHaveLength(2);
  });
});

describe('a registry whose router has no referrers route (mock answering 405 there)', () => {
  it('falls back to the tag schema, and a lost referrers answer (500) fails in one line', async () => {
    const m = await startRegistry({ faults: [{ kind: 'status', route: 'referrers', status: 405 }] });
    try {
      const dest = `${m.host}/noapi`;
      const r = await nixreg('push', '--path', app, `docker://${dest}:1`, '--tls-verify=false', '--sbom', 'spdx');
      expect(errorLines(r.stderr)).toEqual([]);
      expect(r.stderr).toContain('application/spdx+json');
      expect(r.stderr).toContain('(tag-schema)');
      const l = await nixreg('referrers', `${dest}:1`, '--tls-verify=false', '--json');
      expect(JSON.parse(l.stdout)).toMatchObject({ via: 'tag-schema', referrers: [{ artifactType: 'application/spdx+json' }] });
      m.setFaults([{ kind: 'status', route: 'referrers', status: 500 }]);
      const f = await nixreg('referrers', `${dest}:1`, '--tls-verify=false', '--retry-times', '0');
      expect(f.status).not.toBe(0);
      expect(errorLines(f.stderr)).toHaveLength(1);
      expect(errorLines(f.stderr)[0]).toMatch(/^nixreg: referrers of .*noapi@sha256:[0-9a-f]{64}.*500/);
    } finally {
      await m.close();
    }
  });
});

describe('referrers errors', () => {
  it('an image with nothing attached lists nothing; a missing tag fails in one line', async () => {
    const conf = join(tmp, 'conf.json');
    expect((await nixreg('build', '--name', 'plain:1', '--path', app, '--write-conf', conf)).status).toBe(0);
    expect((await nixreg('push', conf, `docker://${dist.host}/plain:1`, '--tls-verify=false')).status).toBe(0);
    const l = await nixreg('referrers', `${dist.host}/plain:1`, '--tls-verify=false');
    expect(errorLines(l.stderr)).toEqual([]);
    expect(l.status).toBe(0);
    expect(l.stdout).toBe('');
    const m = await nixreg('referrers', `${dist.host}/plain:nope`, '--tls-verify=false');
    expect(m.status).not.toBe(0);
    expect(errorLines(m.stderr)).toHaveLength(1);
    expect(errorLines(m.stderr)[0]).toMatch(/^nixreg: .*plain:nope not found/);
  });

  it('--sbom with a docker:// or oci: source is refused before anything is pushed', async () => {
    const r = await nixreg('push', `docker://${dist.host}/plain:1`, `docker://${dist.host}/copy:1`, '--tls-verify=false', '--sbom', 'cyclonedx');
    expect(r.status).toBe(2);
    expect(errorLines(r.stderr)).toEqual([
      `nixreg: --sbom and --provenance need a conf.json or --path source (the store paths the image holds), not docker://${dist.host}/plain:1`,
    ]);
    const t = await nixreg('tags', `${dist.host}/copy`, '--tls-verify=false');
    expect(t.status).not.toBe(0);
  });

  it('--sbom with an archive source is refused before the push, in one line', async () => {
    const img = join(tmp, 'img.tar');
    expect((await nixreg('build', '--name', 'arch:1', '--path', app, '-o', img)).status).toBe(0);
    const r = await nixreg('push', img, `docker://${dist.host}/arch:1`, '--tls-verify=false', '--sbom', 'spdx');
    expect(r.status).not.toBe(0);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/^nixreg: .*--sbom and --provenance need a conf\.json or --path source/);
    expect(errorLines(r.stderr)[0]).not.toMatch(/pushed/);
  });
});
