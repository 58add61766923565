import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from '../../mock-registry/index.js';
import { pullImage, type PullOptions } from '../../src/image/pull.js';
import { LAYERS, makeImage, manifestOf, type TestImage } from '../helpers/images.js';

/**
 * Shared by the resilience suites (and bench/soak.mjs through dist): a small multi-layer image, the fault kinds
 * of the resilience figures as mock-registry rules at a given rate, and an in-process pull that counts retries and resumes from
 * the client's debug log. Backoff and timeouts are tiny so a suite of hundreds of faulted requests takes seconds.
 */

export const FAST_NET = { retry: { times: 8, baseDelayMs: 5, maxDelayMs: 40 }, timeoutMs: 400 };

/** Four layers (gzip, ~260 KB of blobs): enough requests per pull for a 20% fault rate to hit most pulls. */
export function faultImage(): TestImage {
  return makeImage(
    [
      { tar: LAYERS.L1(), c: 'gzip-1' },
      { tar: LAYERS.L2(), c: 'gzip-1' },
      { tar: LAYERS.L3(), c: 'none' },
      { tar: LAYERS.L4(), c: 'gzip-1' },
    ],
    'docker',
  );
}

/** Seed the image without HTTP (no faults, no counters). Returns the manifest digest. */
export async function seedImage(reg: Registry, repo: string, tag: string, img: TestImage): Promise<string> {
  await reg.putBlob(repo, img.config);
  for (const l of img.layers) await reg.putBlob(repo, l.blob);
  const m = manifestOf(img);
  await reg.putManifest(repo, tag, m.bytes, m.mediaType);
  return m.digest;
}

export { PULL_FAULTS, PUSH_FAULTS, type FaultKindSpec } from '../../mock-registry/faults.js';

export interface NetCounts {
  retries: number;
  resumes: number;
  copyRetries: number;
  lines: string[];
}

/** A log sink counting the transport's retry lines and the blob stream's resumes. */
export function countingLog(): { log: (l: string) => void; counts: NetCounts } {
  const counts: NetCounts = { retries: 0, resumes: 0, copyRetries: 0, lines: [] };
  return {
    counts,
    log: (l: string) => {
      counts.lines.push(l);
      // transport retries; whole-upload retries of push (layer regenerated) and of stored blobs (configs, registry copies)
      if (l.startsWith('retry ') || /failed \(.*\); (regenerating the layer and )?retrying \(/.test(l)) counts.retries++;
      if (/^copy of \S+ failed/.test(l)) counts.copyRetries++;
      if (l.endsWith('; resuming')) counts.resumes++;
    },
  };
}

/** One in-process pull into `out`; returns the archive bytes. */
export async function pullTo(
  reg: { host: string },
  ref: string,
  out: string,
  log?: (l: string) => void,
  net: Partial<PullOptions> = FAST_NET,
): Promise<Buffer> {
  await pullImage({
    imageName: `${reg.host}/${ref}`,
    output: out,
    platform: { os: 'linux', arch: 'amd64' },
    tlsVerify: false,
    finalImageName: 'res/app', // the archive names the image: the same for every repository pulled from
    force: true,
    jobs: 2,
    ...net,
    ...(log ? { log } : {}),
  });
  return readFileSync(out);
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `nixreg-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Files in a directory (an aborted output must leave neither the file nor a temp file beside it). */
export const filesIn = (dir: string): string[] => readdirSync(dir);

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nixreg.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Run the built CLI (dist must be built) without blocking this process: the mock registry answering it lives in
 * the test's own event loop, so spawnSync would deadlock.
 */
export function runCli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NIXREG_DEBUG: '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - t0 });
    });
  });
}
