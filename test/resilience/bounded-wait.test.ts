import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { freePort } from '../helpers/distribution.js';
import { parseDuration } from '../../src/cli/network-flags.js';
import { faultImage, filesIn, runCli, seedImage, tempDir, type CliResult } from './faults-helper.js';

// Bounded waiting: a dead registry fails in seconds with one clear line, and --retry-times,
// --retry-max-time and --timeout bound how long a failing one is retried. Times are measured around the CLI
// process, so they include its start-up (~0.5-3 s on a loaded 2-core runner): bounds are generous but far below
// what an unbounded wait would take (60 s read timeout, 5 min retry budget).
let reg: Registry;
let tmp: ReturnType<typeof tempDir>;
let n = 0;

beforeAll(async () => {
  tmp = tempDir('bounded');
  reg = await startRegistry();
  await seedImage(reg, 'res/app', 'v1', faultImage());
});
afterAll(async () => {
  await reg?.close();
  tmp?.remove();
});

async function pull(host: string, extra: string[]): Promise<CliResult & { line: string }> {
  const dir = join(tmp.dir, `run-${n++}`);
  mkdirSync(dir);
  const r = await runCli(['pull', `${host}/res/app:v1`, '-o', join(dir, 'image.tar'), '--quiet', ...extra], { timeoutMs: 90_000 });
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(filesIn(dir)).toEqual([]);
  if (process.env.SHOW_MESSAGES) console.log(r.ms, 'ms', lines[0]);
  return { ...r, line: lines[0]! };
}

describe('a dead registry fails in seconds with one clear line', () => {
  it('closed port: connection refused, no retries', async () => {
    const port = await freePort();
    const r = await pull(`127.0.0.1:${port}`, []);
    expect(r.code).toBe(1);
    expect(r.line).toBe(`nixreg: cannot reach registry 127.0.0.1:${port}: connection refused`);
    expect(r.ms).toBeLessThan(10_000);
  });

  describe('a server that accepts connections and never answers', () => {
    let silent: Server;
    const sockets = new Set<Socket>();
    let host: string;
    beforeAll(async () => {
      silent = createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      host = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });

    it('with --timeout 1s: fails after about a second', async () => {
      const r = await pull(host, ['--timeout', '1s']);
      expect(r.code).toBe(1);
      expect(r.line).toBe(`nixreg: cannot reach registry ${host}: connection timed out`);
      expect(r.ms).toBeLessThan(10_000);
    });

    it('with the defaults: the first contact gives up after 10 s, not 60 s x retries', async () => {
      const r = await pull(host, []);
      expect(r.code).toBe(1);
      expect(r.line).toBe(`nixreg: cannot reach registry ${host}: connection timed out`);
      expect(r.ms).toBeGreaterThanOrEqual(9_500);
      expect(r.ms).toBeLessThan(20_000);
    });
  });
});

describe('retries are bounded', () => {
  const manifestGets = () => reg.log.filter((e) => e.route === 'manifest' && e.method === 'GET').length;

  it('--retry-times 0: one request, then the registry error', async () => {
    reg.setFaults([{ kind: 'status', status: 503, route: 'manifest' }]);
    reg.resetCounters();
    const r = await pull(reg.host, ['--retry-times', '0']);
    reg.setFaults([]);
    expect(r.code).toBe(1);
    expect(r.line).toBe(`nixreg: manifest ${reg.host}/res/app:v1: HTTP 503 from ${reg.host}: injected fault: HTTP 503`);
    expect(manifestGets()).toBe(1);
  });

  it('--retry-times 2: three requests', async () => {
    reg.setFaults([{ kind: 'status', status: 502, route: 'manifest' }]);
    reg.resetCounters();
    const r = await pull(reg.host, ['--retry-times', '2']);
    reg.setFaults([]);
    expect(r.code).toBe(1);
    expect(r.line).toBe(`nixreg: manifest ${reg.host}/res/app:v1: HTTP 502 from ${reg.host}: injected fault: HTTP 502`);
    expect(manifestGets()).toBe(3);
  });

  it('--retry-max-time 2s caps the total backoff although --retry-times allows 50', async () => {
    reg.setFaults([{ kind: 'status', status: 503, route: 'manifest' }]);
    reg.resetCounters();
    const r = await pull(reg.host, ['--retry-times', '50', '--retry-max-time', '2s']);
    reg.setFaults([]);
    expect(r.code).toBe(1);
    expect(r.line).toBe(`nixreg: manifest ${reg.host}/res/app:v1: HTTP 503 from ${reg.host}: injected fault: HTTP 503`);
    expect(manifestGets()).toBe(2); // 1 s backoff fits the 2 s budget, the next 2 s does not
    expect(r.ms).toBeLessThan(10_000);
  });

  it('--timeout 1s bounds a stalled manifest read; retries of it are bounded too', async () => {
    reg.setFaults([{ kind: 'stall', route: 'manifest' }]);
    reg.resetCounters();
    const r = await pull(reg.host, ['--timeout', '1s', '--retry-times', '1']);
    reg.setFaults([]);
    expect(r.code).toBe(1);
    expect(r.line).toBe(`nixreg: manifest ${reg.host}/res/app:v1 (GET ${reg.host}): server stopped responding (read timeout)`);
    expect(manifestGets()).toBe(2);
    expect(r.ms).toBeLessThan(12_000);
  });

  it('prefetch and push take the same flags', async () => {
    reg.setFaults([{ kind: 'status', status: 503, route: 'manifest', method: 'GET' }]);
    reg.resetCounters();
    const pre = await runCli(['prefetch', `${reg.host}/res/app`, 'v1', '--quiet', '--retry-times', '0', '--timeout', '5s', '--retry-max-time', '1m']);
    expect(pre.code, pre.stderr).toBe(1);
    expect(pre.stderr).toBe(`nixreg: manifest ${reg.host}/res/app:v1: HTTP 503 from ${reg.host}: injected fault: HTTP 503\n`);
    expect(manifestGets()).toBe(1);
    reg.setFaults([{ kind: 'status', status: 503, route: 'manifest', method: 'PUT' }]);
    reg.resetCounters();
    const push = await runCli([
      'push',
      `docker://${reg.host}/res/app:v1`,
      `docker://${reg.host}/res/copy:v1`,
      '--quiet',
      '--retry-times',
      '0',
      '--timeout',
      '5s',
    ]);
    reg.setFaults([]);
    expect(push.code, push.stderr).toBe(1);
    expect(push.stderr).toBe(`nixreg: manifest upload to ${reg.host}/res/copy:v1: HTTP 503 from ${reg.host}: injected fault: HTTP 503\n`);
    expect(reg.log.filter((e) => e.route === 'manifest' && e.method === 'PUT')).toHaveLength(1);
  });

  it('a malformed duration is a usage error', async () => {
    const r = await pull(reg.host, ['--timeout', '10 minutes']);
    expect(r.code).toBe(2);
    expect(r.line).toBe('nixreg: --timeout takes a duration like 30s, 500ms or 2m, got "10 minutes"');
  });
});

describe('parseDuration', () => {
  it.each([
    ['30', 30_000],
    ['1.5', 1500],
    ['500ms', 500],
    ['2s', 2000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
  ])('%s = %d ms', (v, ms) => expect(parseDuration(v, '--timeout')).toBe(ms));
  it.each(['', 's', '1d', '-1s', '1s2', 'abc'])('rejects %j', (v) => expect(() => parseDuration(v, '--timeout')).toThrow(/--timeout takes a duration/));
});
