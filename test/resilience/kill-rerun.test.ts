import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NIXREG_BIN } from '../helpers/cli.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { layerTar, pushTestImage } from '../helpers/images.js';
import { buildTestClosure } from '../helpers/nix-closure.js';
import { simpleImage } from '../helpers/simple-image.js';
import { requireTool } from '../helpers/tools.js';
import { seededRandom } from '../../mock-registry/faults.js';

/**
 * kill -9 at seeded random points, then the same command again: for pull, prefetch, stream and build, after each
 * rerun the output is byte-identical to an uninterrupted run's, and nothing is left beside the output (no
 * `.NAME.nixreg-*.tmp`) or in the run's temp dir (TMPDIR: spool and prefetch directories). Each command is killed
 * KILLS times, at delays drawn (seeded, so the points are the same each run) from 0 to 0.9 times its
 * uninterrupted duration, so kills land before the first byte, mid-download and mid-write. Needs a built bin/.
 */
const KILLS = 6;
const SEED = 0x5eed2026;

let tmp: string;
let reg: Distribution;
let app: string;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/** Run the CLI; with `killAfterMs`, SIGKILL it then (if it is still running). */
function run(args: string[], env: NodeJS.ProcessEnv, killAfterMs?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const p = spawn(process.execPath, [NIXREG_BIN, ...args], { env: { ...process.env, NIXREG_DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('error', reject);
    p.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), ms: Number(process.hrtime.bigint() - started) / 1e6 });
    });
  });
}

interface Case {
  name: string;
  /** the command line; OUT is the output file */
  args: (out: string) => string[];
  /** what must be identical to the uninterrupted run: the output file, stdout, or both */
  compare: Array<'file' | 'stdout'>;
}

const cases = (): Case[] => [
  { name: 'pull', args: (out) => ['pull', `${reg.host}/kill/app:1`, '-o', out, '--force'], compare: ['file'] },
  { name: 'prefetch', args: (out) => ['prefetch', `${reg.host}/kill/app`, '1', '--json', '-o', out, '--force'], compare: ['file', 'stdout'] },
  {
    name: 'stream',
    args: (out) => ['stream', join(tmp, 'conf.json'), '-o', out, '--force'],
    compare: ['file'],
  },
  {
    name: 'build',
    args: (out) => ['build', '--name', 'kill/build:1', '--path', app, '--cmd', `${app}/bin/app`, '-o', out, '--force', '--no-gc-root'],
    compare: ['file'],
  },
];

beforeAll(async () => {
  for (const t of ['docker-registry', 'nix-build', 'nix-store']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-kill-rerun-'));
  reg = await startDistribution();
  // 3 layers of incompressible data (~12 MiB), so a pull spends long enough in each stage to be killed there
  const layers = [0, 1, 2].map((i) => layerTar({ [`data/blob${i}`]: randomBytes(4 << 20) }));
  await pushTestImage(reg.url, 'kill/app', simpleImage(layers), '1');
  // a store closure with a 12 MiB file, for stream and build
  app = buildTestClosure(
    tmp,
    `app = mk "nixreg-kill-app" "mkdir -p $out/bin $out/share && head -c 12582912 /dev/urandom > $out/share/blob && printf '#!/bin/sh\\\\n' > $out/bin/app && chmod 555 $out/bin/app";`,
  );
  const conf = await run(
    [
      'build',
      '-q',
      '--name',
      'kill/stream:1',
      '--path',
      app,
      '--cmd',
      `${app}/bin/app`,
      '-o',
      join(tmp, 'built.tar'),
      '--write-conf',
      join(tmp, 'conf.json'),
      '--no-gc-root',
    ],
    {
      XDG_CACHE_HOME: join(tmp, 'setup-cache'),
    },
  );
  if (conf.status !== 0) throw new Error(`setup build failed: ${conf.stderr}`);
}, 300_000);
afterAll(async () => {
  await reg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('kill -9, then rerun', () => {
  for (const c of ['pull', 'prefetch', 'stream', 'build'])
    it(`${c}: ${KILLS} kills at seeded random points; each rerun gives the uninterrupted bytes and leaves no temp`, async () => {
      const k = cases().find((x) => x.name === c)!;
      const dir = join(tmp, c);
      const outDir = join(dir, 'out');
      const runTmp = join(dir, 'tmp');
      for (const d of [outDir, runTmp]) mkdirSync(d, { recursive: true });
      const env = { TMPDIR: runTmp, XDG_CACHE_HOME: join(dir, 'cache'), XDG_RUNTIME_DIR: join(dir, 'run') };
      const out = join(outDir, 'image.tar');

      const ref = await run(k.args(out), env);
      expect(ref.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
      expect(ref.status).toBe(0);
      const refFile = readFileSync(out);
      // a second uninterrupted run (warm caches, like the reruns) sets the scale of the kill delays
      const warm = await run(k.args(out), env);
      expect(warm.status).toBe(0);
      const span = Math.min(ref.ms, warm.ms);
      const random = seededRandom(SEED ^ c.length ^ c.charCodeAt(0));
      const problems: string[] = [];
      let killedMidway = 0;
      const killLeftovers: string[] = []; // what the kills left for the reruns to clear (shown, not asserted)
      for (let i = 0; i < KILLS; i++) {
        rmSync(out, { force: true });
        const delay = Math.round(random() * 0.9 * span);
        const killed = await run(k.args(out), env, delay);
        if (killed.signal === 'SIGKILL') killedMidway++;
        const leftByKill = [...readdirSync(outDir).filter((f) => f !== 'image.tar'), ...readdirSync(runTmp)];
        if (leftByKill.length) killLeftovers.push(leftByKill.join(', '));
        const again = await run(k.args(out), env);
        const at = `kill ${i + 1} after ${delay} ms (${killed.signal ?? `exit ${killed.status}`})`;
        if (again.status !== 0) problems.push(`${at}: rerun exited ${again.status}: ${again.stderr.trim()}`);
        if (k.compare.includes('file') && !readFileSync(out).equals(refFile)) problems.push(`${at}: rerun output differs from the uninterrupted run`);
        if (k.compare.includes('stdout') && !again.stdout.equals(ref.stdout)) problems.push(`${at}: rerun stdout differs: ${again.stdout}`);
        const beside = readdirSync(outDir).filter((f) => f !== 'image.tar');
        if (beside.length) problems.push(`${at}: left beside the output: ${beside.join(', ')}`);
        const temps = readdirSync(runTmp);
        if (temps.length) problems.push(`${at}: left in the temp dir: ${temps.join(', ')}`);
      }
      console.log(`${c}: ${killedMidway}/${KILLS} runs killed midway; left for the rerun: ${killLeftovers.join(' | ') || 'nothing'}`);
      expect(problems).toEqual([]);
      // the seeded delays must actually interrupt runs, or this test would prove nothing
      expect(killedMidway).toBeGreaterThanOrEqual(1);
    }, 600_000);
});

/** A PID that existed and is gone (a process that ran and exited), as a killed run's is. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => p.on('close', r));
  return p.pid!;
}

describe('what a killed run left is reclaimed by the next one', () => {
  for (const c of ['pull', 'prefetch', 'stream', 'build'])
    it(`${c}: a dead run's temp file beside the output and its temp dirs are removed, a live run's are kept`, async () => {
      const k = cases().find((x) => x.name === c)!;
      const dir = join(tmp, `reclaim-${c}`);
      const outDir = join(dir, 'out');
      const runTmp = join(dir, 'tmp');
      for (const d of [outDir, runTmp]) mkdirSync(d, { recursive: true });
      const dead = await deadPid();
      const live = process.pid; // this test process: alive throughout
      const stale = [`nixreg-spool-${dead}-AbC123`, `nixreg-prefetch-${dead}-dEf456`, `nixreg-oci-spool-${dead}-GhI789`];
      for (const d of [...stale, `nixreg-spool-${live}-LiVe00`]) {
        mkdirSync(join(runTmp, d));
        writeFileSync(join(runTmp, d, 'layer-0'), randomBytes(4096));
      }
      writeFileSync(join(outDir, `.image.tar.nixreg-${dead}-0123456789ab.tmp`), randomBytes(4096));
      writeFileSync(join(outDir, `.image.tar.nixreg-${live}-ba9876543210.tmp`), randomBytes(4096));
      const r = await run(k.args(join(outDir, 'image.tar')), { TMPDIR: runTmp, XDG_CACHE_HOME: join(dir, 'cache'), XDG_RUNTIME_DIR: join(dir, 'run') });
      expect(r.status, r.stderr).toBe(0);
      expect(readdirSync(outDir).sort()).toEqual([`.image.tar.nixreg-${live}-ba9876543210.tmp`, 'image.tar']);
      // prefetch makes a spool and a blob directory (pull, stream and build to a file need neither)
      const wanted = { pull: [] as number[], prefetch: [0, 1], stream: [] as number[], build: [] as number[] }[c]!;
      const left = readdirSync(runTmp).sort();
      expect(left).toContain(`nixreg-spool-${live}-LiVe00`);
      for (const i of wanted) expect(left).not.toContain(stale[i]);
    }, 300_000);
});
