import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The checkout's CLI entry; tests that spawn it need a built dist/ (`npx tsc -p tsconfig.json`; npm test does it). */
export const NIXREG_BIN = join(import.meta.dirname, '../../bin/nixreg.js');

export interface CliOptions {
  /** extra environment on top of process.env (NIXREG_DEBUG is cleared so stderr stays the one-line message) */
  env?: NodeJS.ProcessEnv;
  /** XDG_CACHE_HOME for the run, so tests never share (or pollute) the user's layer/push caches */
  cacheHome?: string;
}

export interface CliRun {
  status: number | null;
  /** stdout as bytes: --raw / archive outputs are compared with Buffer.equals */
  stdoutBytes: Buffer;
  stdout: string;
  stderr: string;
}

function cliEnv(opts: CliOptions): NodeJS.ProcessEnv {
  return { ...process.env, NIXREG_DEBUG: '', ...(opts.cacheHome ? { XDG_CACHE_HOME: opts.cacheHome } : {}), ...opts.env };
}

/** Spawn `node bin/nixreg.js ...args` without blocking the event loop (needed when the test serves HTTP itself). */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [NIXREG_BIN, ...args], { env: cliEnv(opts) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (status) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ status, stdoutBytes, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** The same, synchronously (for tests whose servers are other processes). */
export function runCliSync(args: string[], opts: CliOptions = {}): CliRun {
  const r = spawnSync(process.execPath, [NIXREG_BIN, ...args], { env: cliEnv(opts), maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdoutBytes: r.stdout, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** The `nixreg: …` lines of a run's stderr (progress and warnings filtered out). */
export const errorLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('nixreg:'));

/**
 * The CLI with its own cache directory (a function: suites create it in beforeAll), stdout as bytes (archives are
 * compared with Buffer.equals); `ok` throws with the command and its stderr unless it exits 0.
 */
export function cliWithCache(cacheHome: () => string) {
  const nixreg = async (args: string[]) => {
    const r = await runCli(args, { cacheHome: cacheHome() });
    return { status: r.status, stdout: r.stdoutBytes, stderr: r.stderr };
  };
  const ok = async (args: string[]) => {
    const r = await nixreg(args);
    if (r.status !== 0) throw new Error(`nixreg ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r;
  };
  return { nixreg, ok };
}

/**
 * Run pinned error cases `[args, exit code, message]`, four processes at a time: each must exit with its code and
 * print exactly one `nixreg:` line, the last thing on stderr, equal to `nixreg: ${wantOf(message)}`. Returns one
 * description per case that did not (an empty list when all did).
 */
export async function pinnedErrorFailures(
  cases: ReadonlyArray<readonly [string, number, string]>,
  argvOf: (args: string, index: number) => string[],
  wantOf: (message: string) => string,
  run: (argv: string[]) => Promise<{ status: number | null; stderr: string }>,
): Promise<string[]> {
  const failures: string[] = [];
  const queue = cases.map((c, i) => [c, i] as const);
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let q = queue.shift(); q; q = queue.shift()) {
        const [[args, code, message], i] = q;
        const argv = argvOf(args, i);
        const r = await run(argv);
        const want = `nixreg: ${wantOf(message)}`;
        const ok = r.status === code && r.stderr.endsWith(want + '\n') && errorLines(r.stderr).length === 1;
        if (!ok) failures.push(`nixreg ${argv.join(' ')}\n  want ${code} ${want}\n  got  ${r.status} ${r.stderr}`);
      }
    }),
  );
  return failures;
}
