import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { parseRetryAfter } from '../../src/registry/retry-after.js';

/**
 * 429s through the CLI: a quota (Docker Hub's pull rate limit: RateLimit-Remaining 0) and a Retry-After longer than
 * --retry-max-time fail at once with one line saying which limit and what to do; a Retry-After within the budget is
 * waited out and the pull succeeds. Needs bin/nixreg.js built (npm run build).
 */
const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/nixreg.js');
const ARCHIVE = join(resolve(import.meta.dirname, '..'), 'fixtures/docker-archive/skopeo-tiny.tar');

let root: string;
let reg: Registry;

function nixreg(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((done) => {
    const home = join(root, 'home');
    const child = spawn('node', [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, '.config') },
    });
    let stderr = '';
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => done({ status, stderr }));
  });
}

const manifestGets = () => reg.log.filter((e) => e.route === 'manifest' && (e.method === 'GET' || e.method === 'HEAD')).length;
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('nixreg:'));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-429-'));
  mkdirSync(join(root, 'home', 'run'), { recursive: true });
  reg = await startRegistry();
  const push = await nixreg(['push', ARCHIVE, `docker://${reg.host}/limits/app:1`]);
  expect(push.status).toBe(0);
}, 120_000);

afterAll(async () => {
  await reg?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('429 and Retry-After', () => {
  it('parseRetryAfter reads delay-seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  it('a used-up pull quota (RateLimit-Remaining: 0) fails at once, naming the limit and docker login', async () => {
    reg.setFaults([
      { kind: 'status', status: 429, retryAfter: 3600, route: 'manifest', headers: { 'RateLimit-Limit': '100;w=21600', 'RateLimit-Remaining': '0;w=21600' } },
    ]);
    reg.log.length = 0;
    const run = await nixreg(['pull', `${reg.host}/limits/app:1`, '-o', join(root, 'quota.tar'), '--retry-max-time', '5m']);
    reg.setFaults([]);
    expect(run.status).not.toBe(0);
    const lines = errorLines(run.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('rate limit (100 requests per 6 h)');
    expect(lines[0]).toContain('docker login');
    expect(manifestGets()).toBe(1);
  }, 120_000);

  it('a Retry-After longer than --retry-max-time fails at once and says until when', async () => {
    reg.setFaults([{ kind: 'status', status: 429, retryAfter: 40, route: 'manifest' }]);
    reg.log.length = 0;
    const run = await nixreg(['pull', `${reg.host}/limits/app:1`, '-o', join(root, 'long.tar'), '--retry-max-time', '10s']);
    reg.setFaults([]);
    expect(run.status).not.toBe(0);
    const lines = errorLines(run.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/asks to wait 40 s \(Retry-After\).*--retry-max-time/);
    expect(manifestGets()).toBe(1);
  }, 120_000);

  it('a Retry-After within the budget is waited out and the pull succeeds', async () => {
    reg.setFaults([{ kind: 'status', status: 429, retryAfter: 1, route: 'manifest', times: 1 }]);
    reg.log.length = 0;
    const out = join(root, 'ok.tar');
    const run = await nixreg(['pull', `${reg.host}/limits/app:1`, '-o', out, '--retry-max-time', '1m']);
    reg.setFaults([]);
    expect(errorLines(run.stderr)).toEqual([]);
    expect(run.status).toBe(0);
    expect(readFileSync(out).length).toBeGreaterThan(0);
    expect(manifestGets()).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
