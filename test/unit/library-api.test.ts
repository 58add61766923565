import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';

/**
 * nixreg as a library, the way a consumer gets it: `npm pack` (so the `files` list must hold everything the entry
 * module needs), the tarball unpacked as node_modules/nixreg of a temporary project (its dependencies linked from
 * this checkout's node_modules, as npm would install them), a TypeScript program that imports 'nixreg' by name
 * type-checked with tsc against the package's `types`, then run against Debian's docker-registry on loopback:
 * push a conf, pull it by digest, inspect it, and catch a NixregError for a missing tag. Needs `npm run build`.
 */
const ROOT = resolve(import.meta.dirname, '../..');

const CONSUMER = `
import { readFileSync } from 'node:fs';
import { ExitCode, NixregError, PushCache, inspectImage, openSource, pullImage, pushConf, type PullResult, type PushResult } from 'nixreg';

const [host, storeRoot, confFile, out, cacheDir] = process.argv.slice(2) as [string, string, string, string, string];
const pushed: PushResult = await pushConf({ confFile, storeRoot, destination: \`docker://\${host}/lib/app:1\`, tlsVerify: false, cache: new PushCache(cacheDir) });
const pulled: PullResult = await pullImage({ imageName: \`\${host}/lib/app\`, digest: pushed.digest, output: out, platform: { os: 'linux', arch: 'amd64' }, tlsVerify: false });
const src = await openSource(\`docker://\${host}/lib/app:1\`, { platform: { os: 'linux', arch: 'amd64' }, tlsVerify: false });
const inspected = inspectImage(src);
await src.close();
let missing: { exitCode: number; message: string; isNixregError: boolean } | undefined;
try {
  await openSource(\`docker://\${host}/lib/app:no-such-tag\`, { platform: { os: 'linux', arch: 'amd64' }, tlsVerify: false });
} catch (e) {
  if (e instanceof NixregError) missing = { exitCode: e.exitCode, message: e.message, isNixregError: true };
}
process.stdout.write(JSON.stringify({
  pushed: pushed.digest,
  pulled: pulled.manifestDigest,
  pulledSize: readFileSync(out).length,
  size: pulled.size,
  inspected: inspected.Digest,
  layers: inspected.Layers.length,
  missing,
  notFound: ExitCode.notFound,
}));
`;

let reg: Distribution;
let tmp: string;
let storeRoot: string;
let project: string;
let packed: { filename: string; files: Array<{ path: string }> };
beforeAll(async () => {
  requireTool('docker-registry');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-library-'));
  reg = await startDistribution();
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  project = join(tmp, 'consumer');
  const modules = join(project, 'node_modules');
  mkdirSync(join(modules, 'nixreg'), { recursive: true });
  packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' }))[0];
  execFileSync('tar', ['-xzf', join(tmp, packed.filename), '-C', join(modules, 'nixreg'), '--strip-components=1']);
  for (const dep of readdirSync(join(ROOT, 'node_modules'))) if (!dep.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', dep), join(modules, dep));
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the packed library, imported as 'nixreg'", () => {
  test('type-checks and runs a push, a pull by digest and an inspect against a real registry', () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    // tests, sources, mock registry and bench stay out of the package
    expect(files.filter((f) => /^(test|src|mock-registry|bench|dist\/mock-registry|dist\/bench)\//.test(f))).toEqual([]);

    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'] },
        files: ['main.ts'],
      }),
    );
    writeFileSync(join(project, 'main.ts'), CONSUMER);
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8' });
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);

    const conf = join(FIXTURES, 'cases/a-defaults/conf.json');
    const run = spawnSync(process.execPath, [join(project, 'out/main.js'), reg.host, storeRoot, conf, join(tmp, 'pulled.tar'), join(tmp, 'cache')], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'xdg-cache') },
    });
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout);
    expect(r.pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.pulled).toBe(r.pushed);
    expect(r.inspected).toBe(r.pushed);
    expect(r.layers).toBeGreaterThan(0);
    expect(r.pulledSize).toBe(r.size);
    expect(r.missing).toMatchObject({ isNixregError: true, exitCode: r.notFound });
    expect(r.missing.message).toContain('no-such-tag');
  }, 180_000);

  test('a type error in a consumer is reported by tsc (the types are real, not any)', () => {
    writeFileSync(join(project, 'bad.ts'), `import { pullImage } from 'nixreg';\nawait pullImage({ imageName: 1, output: 'x' });\n`);
    const tsc = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '--noEmit',
        '--module',
        'NodeNext',
        '--moduleResolution',
        'NodeNext',
        '--target',
        'ES2022',
        '--strict',
        '--types',
        'node',
        join(project, 'bad.ts'),
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(tsc.status).not.toBe(0);
    expect(tsc.stdout).toMatch(/^bad\.ts\(2,\d+\): error TS2322/m);
    // the only errors are the consumer's: the package's own declarations type-check
    expect(tsc.stdout).not.toContain('node_modules/nixreg');
  }, 120_000);
});
