import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closureGraph } from '../../src/nix/closure.js';
import { NIXREG_BIN } from '../helpers/cli.js';
import { startAcrListingFront, type ListingFront } from '../helpers/acr-listing-front.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildTestClosure } from '../helpers/nix-closure.js';
import { runsNixreg, shellCommands, withoutComment, type ReadmeCommand } from '../helpers/readme-blocks.js';
import { requireTool } from '../helpers/tools.js';

/**
 * Every command line of the README's shell blocks, run with the bundled CLI against real parts: Debian's
 * docker-registry stands in for every registry host, nix-bin builds the store paths, a fresh temp dir (with the
 * files the README assumes: conf.json, image.tar, a layout, ...) is the cwd of each line. Each line must exit 0,
 * or the status its comment gives (`# exits 5`).
 * The blocks are read from README.md here, so a new line is run (or must be listed in NOT_RUN) automatically.
 * Needs a built bin/ (`npm run build`).
 */
const README = join(import.meta.dirname, '../../README.md');

/** Lines that cannot run on this machine, by exact README text (continuations joined), with the reason. */
const NOT_RUN: Record<string, string> = {
  'npm ci': 'installs the checkout this test runs in',
  'npm run demo': 'rebuilds dist/ and serves a demo on a fixed port; test/mock-registry/cli-demo.test.ts runs the demo',
  'npm run build          # tsc to dist/, then an esbuild bundle per command (dist/bundle) that bin/nixreg.js runs':
    'this test runs the bundle that build produced',
  'npm link               # optional: puts `nixreg` on PATH': 'changes the global npm prefix; the test puts a nixreg shim on PATH instead',
  'npm test': 'runs this test',
  'nix-build -A image.conf -o conf.json            # the `conf` passthru of dockerTools.streamLayeredImage':
    'needs nixpkgs (not on this machine); conf.json is made by `nixreg build --write-conf` from a nix-bin closure instead',
  'npm run registry -- --port 5000                 # listening on http://127.0.0.1:5000':
    'rebuilds dist/ and serves forever on a fixed port; test/mock-registry/cli-demo.test.ts starts the mock registry',
  'npm run registry -- --help                      # auth (basic, bearer), TLS, --storage DIR, --fault …':
    'rebuilds dist/ (npm run -s build) while other tests read it',
  'nix-build -A pushApp && ./result/bin/push-app docker://registry.example.com/app:1.0':
    'needs nixpkgs (pkgs.dockerTools, pkgs.hello); test/integration/nix-push-image.test.ts builds push-image.nix',
  './result/bin/push-app --output app.tar          # only the docker-archive, no registry':
    'needs nixpkgs (pkgs.dockerTools); test/integration/nix-push-image.test.ts runs --output',
  'npm run bench                                   # median of 5 per row; prints the table and writes bench/RESULTS.md':
    'minutes of load on a shared 2-core machine; test/bench-smoke/ runs the bench in small',
  'npm run bench -- --runs 3 --size small --only pull,push': 'rebuilds dist/ while other tests read it; test/bench-smoke/run.test.ts runs bench/run.mjs small',
};

interface Ctx {
  reg: string;
  acr: string;
  app: string;
  nixDigest: string;
  nixHash: string;
  nginxDigest: string;
  nginxNix32: string;
  armDigest: string;
}

/**
 * How a README line becomes the command that is run, in order: registry hosts and Docker Hub names become the
 * local registry (which holds an image under each name the README uses), `$(nix-build …)` becomes a store path
 * nix-bin built, `…` placeholders become the real digest or hash of that image, `docker load` (docker is not on
 * this machine) becomes `tar t` reading the whole archive.
 */
const MAPPING: Array<[RegExp, (c: Ctx) => string, string]> = [
  [/\$\(nix-build -A image\.conf\)/g, () => 'conf.json', 'the conf `nixreg build --write-conf` made from the nix-bin closure'],
  [/"\$\(nix-build '<nixpkgs>' -A hello\)"|\$\(nix-build -A app\)/g, (c) => c.app, 'a store path nix-bin built (bin/app)'],
  [/\bmyregistry\.azurecr\.io\b/g, (c) => c.acr, "Azure's registry: the local docker-registry behind a front answering ACR's manifest listing"],
  [/\bghcr\.io\b|\bregistry\.example\.com\b|\bregistry\.example\b/g, (c) => c.reg, 'the local docker-registry'],
  [/docker:\/\/(registry|a|b)\//g, (c) => `docker://${c.reg}/$1/`, 'docker://registry/… and docker://a/x, docker://b/y: the local registry'],
  [/docker:\/\/REG\//g, (c) => `docker://${c.reg}/`, 'docker://REG/…: the local registry'],
  [/docker:\/\/OTHER\//g, (c) => `docker://${c.reg}/other/`, 'docker://OTHER/…: another repository of the local registry'],
  [/(?<=\s)registry\/app:1(?=\s)/g, (c) => `${c.reg}/registry/app:1`, 'registry/app:1 (sign, verify): the image the line before pushed'],
  [
    /^(nixreg copy )(docker-archive:\.\/result )/g,
    () => 'ln -sfn image.tar.gz result && $1$2',
    'result: what nix-build links for buildLayeredImage (a gzip docker-archive)',
  ],
  [
    /(?<!--final-image-name )(?<=\s|docker:\/\/)(nixos\/nix|nginx|alpine)(?=[\s:]|$)/g,
    (c) => `${c.reg}/$1`,
    'Docker Hub names: the same repository on the local registry',
  ],
  [/sha256:498f…/g, (c) => c.nixDigest, 'nixos/nix:2.19.3 manifest digest'],
  [/sha256-OEgs3u…=/g, (c) => c.nixHash, "that pull's SRI hash"],
  [/(nginx --digest )sha256:… --sha256 …/g, (c) => `$1${c.nginxDigest} --sha256 ${c.nginxNix32}`, "nginx's digest and the pull's nix32 hash"],
  [/@sha256:9b1e…/g, (c) => `@${c.armDigest}`, "acme/app:1.1's linux/arm64 image"],
  [/(nixreg hash )sha256-…/g, (c) => `$1${c.nixHash}`, 'an SRI hash'],
  [/^(nixreg push )conf\.json( docker:\/\/\S+-arm64)$/g, () => '$1conf-arm64.json$2', 'on the aarch64 runner: the conf built there (linux/arm64)'],
  [
    /^nixreg inspect --json result$/g,
    () => 'ln -sfn image.tar.gz result && nixreg inspect --json result',
    'result: what nix-build links for buildLayeredImage (a gzip docker-archive)',
  ],
  [/\|\s*docker load$/g, () => '| tar t', 'docker load: tar reads the whole archive'],
];

/** The exit status a line's comment gives (`# exits 5`, `# exit code 4`); 0 when it gives none. */
function expectedExit(text: string): number {
  const m = /#.*\bexit(?:s| code| status)?\s+(\d+)\b/.exec(text);
  return m ? Number(m[1]) : 0;
}

function mapped(cmd: ReadmeCommand, c: Ctx): string {
  let s = withoutComment(cmd.text);
  for (const [re, to] of MAPPING) {
    const rep = to(c);
    s = s.replace(re, (...m) => rep.replace(/\$(\d)/g, (_, n) => String(m[Number(n)])));
  }
  return s;
}

let tmp: string;
let seed: string; // the files every line's cwd starts with
let reg: Distribution;
let acr: ListingFront;
let ctx: Ctx;
let env: NodeJS.ProcessEnv;

/** bash -c CMD without blocking the event loop (the ACR front answers from this process) */
function sh(cmd: string, cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000, killSignal: 'SIGKILL' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}
async function ok(cmd: string, cwd = seed): Promise<string> {
  const r = await sh(cmd, cwd);
  if (r.status !== 0) throw new Error(`setup \`${cmd}\` failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const sri = (file: string) => 'sha256-' + createHash('sha256').update(readFileSync(file)).digest('base64');

beforeAll(async () => {
  for (const t of ['nix-build', 'nix-hash', 'skopeo', 'docker-registry', 'tar', 'openssl']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-readme-'));
  seed = join(tmp, 'seed');
  const bin = join(tmp, 'bin');
  for (const d of [seed, bin, join(tmp, 'home'), join(tmp, 'run'), join(tmp, 'cache')]) mkdirSync(d, { recursive: true });
  // the two names package.json installs, as shims running this checkout's bin/
  for (const [name, file] of [
    ['nixreg', NIXREG_BIN],
    ['nix-prefetch-docker', join(NIXREG_BIN, '..', 'nix-prefetch-docker.js')],
  ] as const) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec '${process.execPath}' '${file}' "$@"\n`);
    chmodSync(join(bin, name), 0o755);
  }
  env = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: join(tmp, 'home'),
    XDG_RUNTIME_DIR: join(tmp, 'run'),
    XDG_CACHE_HOME: join(tmp, 'cache'),
    XDG_CONFIG_HOME: join(tmp, 'home', '.config'),
    TMPDIR: tmp,
    TOKEN: 'readme-token',
  };
  reg = await startDistribution();
  acr = await startAcrListingFront(reg);
  const app = buildTestClosure(
    tmp,
    `app = mk "nixreg-readme-app-1.0" "mkdir -p $out/bin && printf '#!/bin/sh\\\\necho hi\\\\n' > $out/bin/app && chmod 555 $out/bin/app";`,
  );
  const R = reg.host;
  // the files the README's lines assume in their cwd
  await ok(`nixreg build -q --name app:v1 --path ${app} --cmd ${app}/bin/app -o image.tar --write-conf conf.json --no-gc-root`);
  await ok(`nixreg build -q --name app:v1 --architecture arm64 --path ${app} --cmd ${app}/bin/app -o arm64.tar --write-conf conf-arm64.json --no-gc-root`);
  await ok('nixreg stream -q conf.json --compress gz -o image.tar.gz && nixreg stream -q conf.json --format oci -o layout');
  await ok(`nixreg build -q --name a:1 --path ${app} --cmd /a -o a.tar && nixreg build -q --name b:1 --path ${app} --cmd /b --compress gz -o b.tar.gz`);
  await ok(`nixreg build -q --name c:1 --path ${app} --cmd /c --compress zstd -o c.tar.zst`);
  writeFileSync(join(seed, 'graph.json'), JSON.stringify({ graph: await closureGraph([app]) }));
  mkdirSync(join(seed, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(seed, 'rootfs', 'etc', 'motd'), 'hello\n');
  symlinkSync(app, join(seed, 'result'));
  // the registry: an image under each name the README uses
  for (const ref of [
    'nixos/nix:2.19.3',
    'nixos/nix:2.24',
    'alpine:3.20',
    'nginx:latest',
    'acme/app:1.0',
    'acme/app:v1',
    'acme/app:latest',
    'a/x:1',
    'acme/app-ci:1.1-amd64',
  ])
    await ok(`nixreg push -q conf.json docker://${R}/${ref}`);
  await ok(`nixreg push -q conf-arm64.json docker://${R}/acme/app-ci:1.1-arm64 && nixreg push -q conf.json docker://${R}/acme/app:nightly-2024-01-02`);
  await ok(`nixreg index create -q ${R}/acme/app:1.1 ${R}/acme/app-ci:1.1-amd64 ${R}/acme/app-ci:1.1-arm64`);
  await ok(`nixreg index create -q ${R}/app:1 ${R}/acme/app-ci:1.1-amd64 ${R}/acme/app-ci:1.1-arm64`);
  // the keys the sign / verify line names (a plain PKCS#8 P-256 key, as the README says openssl makes it)
  await ok('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cosign.key && openssl pkey -in cosign.key -pubout -out cosign.pub');
  const digestOf = async (ref: string) => (await ok(`nixreg digest ${R}/${ref}`)).trim();
  const nixDigest = await digestOf('nixos/nix:2.19.3');
  await ok(`nixreg pull ${R}/nixos/nix --digest ${nixDigest} --arch amd64 --final-image-name nixos/nix --final-image-tag 2.19.3 -o ${tmp}/nix.tar`, tmp);
  const nginxDigest = await digestOf('nginx:latest');
  await ok(`nixreg pull ${R}/nginx --digest ${nginxDigest} -o ${tmp}/nginx.tar`, tmp);
  ctx = {
    reg: R,
    acr: acr.host,
    app,
    nixDigest,
    nixHash: sri(join(tmp, 'nix.tar')),
    nginxDigest,
    nginxNix32: execFileSync('nix-hash', ['--flat', '--type', 'sha256', '--base32', join(tmp, 'nginx.tar')], { encoding: 'utf8' }).trim(),
    armDigest: await digestOf('acme/app:1.1 --platform linux/arm64'),
  };
}, 600_000);
afterAll(async () => {
  await acr?.close();
  await reg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('README command lines', () => {
  const commands = shellCommands(readFileSync(README, 'utf8'));

  it('finds the README blocks (the extraction itself works)', () => {
    expect(commands.length).toBeGreaterThan(30);
    expect(commands.some((c) => c.text.startsWith('nixreg pull nixos/nix --digest sha256:498f… --arch amd64 --final-image-name'))).toBe(true);
  });

  it('lists every line it does not run, and nothing it does run or that is gone from the README', () => {
    const texts = new Set(commands.map((c) => c.text));
    const unlisted = commands.filter((c) => !runsNixreg(c.text) && !(c.text in NOT_RUN)).map((c) => `README:${c.line}: ${c.text}`);
    expect(unlisted).toEqual([]);
    expect(Object.keys(NOT_RUN).filter((t) => !texts.has(t) || runsNixreg(t))).toEqual([]);
  });

  it('runs every nixreg line; each exits as its comment says (0 unless `# exits N`)', async () => {
    const failures: string[] = [];
    let n = 0;
    for (const c of commands.filter((c) => runsNixreg(c.text) && !(c.text in NOT_RUN))) {
      const cmd = mapped(c, ctx);
      if (cmd.includes('…')) {
        failures.push(`README:${c.line}: placeholder left after the mapping: ${cmd}`);
        continue;
      }
      const cwd = join(tmp, `line-${c.line}`);
      cpSync(seed, cwd, { recursive: true, verbatimSymlinks: true });
      // an output the line names must not exist yet (every line starts from the same seed files)
      for (const m of cmd.matchAll(/(?:^|\s)(?:-o|--output)\s+(\S+)/g)) rmSync(join(cwd, m[1]!), { recursive: true, force: true });
      const r = await sh(cmd, cwd);
      n++;
      const want = expectedExit(c.text);
      if (r.status !== want)
        failures.push(`README:${c.line}: \`${cmd}\` exited ${r.status}, the README says ${want}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      rmSync(cwd, { recursive: true, force: true });
    }
    expect(failures).toEqual([]);
    expect(n).toBeGreaterThan(25);
  }, 900_000);
});
