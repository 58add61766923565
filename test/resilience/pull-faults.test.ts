import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { FAST_NET, PULL_FAULTS, countingLog, faultImage, pullTo, seedImage, tempDir } from './faults-helper.js';

// Pull under faults: for each fault kind at a 20% per-request rate, RUNS seeded pulls all succeed and
// write exactly the fault-free archive; where the registry honours Range, interrupted blobs resume (bytes served
// stay close to a fault-free pull) instead of restarting. bench/soak.mjs runs the same with 50 pulls per kind.
const RUNS = 12;
const RATE = 0.2;

let reg: Registry;
let tmp: ReturnType<typeof tempDir>;
let reference: Buffer;
let cleanBytes: number; // blob bytes a fault-free pull is served
let blobTotal: number;

beforeAll(async () => {
  tmp = tempDir('pull-faults');
  reg = await startRegistry();
  const img = faultImage();
  await seedImage(reg, 'res/app', 'v1', img);
  blobTotal = img.config.length + img.layers.reduce((n, l) => n + l.blob.length, 0);
  reg.resetCounters();
  reference = await pullTo(reg, 'res/app:v1', join(tmp.dir, 'reference.tar'));
  cleanBytes = reg.counters.blobBytesServed;
});
afterAll(async () => {
  await reg?.close();
  tmp?.remove();
});

describe.each(PULL_FAULTS)('pull with $name at 20%', (kind) => {
  it(`${RUNS} pulls: all succeed, byte-identical${kind.resumes ? ', resumed not restarted' : ''}`, async () => {
    let faults = 0;
    let retries = 0;
    let resumes = 0;
    let refetched = 0;
    for (let run = 0; run < RUNS; run++) {
      reg.setFaults({ seed: 1000 + run, rules: kind.rules(RATE, run) });
      reg.resetCounters();
      const { log, counts } = countingLog();
      const out = join(tmp.dir, `pull-${run}.tar`);
      const got = await pullTo(reg, 'res/app:v1', out, log).catch((e: Error) => {
        throw new Error(`run ${run} (${kind.name}) failed: ${e.message}\n${counts.lines.join('\n')}`);
      });
      expect(got.equals(reference), `run ${run}: archive differs from the fault-free pull`).toBe(true);
      faults += reg.counters.faultsInjected;
      retries += counts.retries;
      resumes += counts.resumes;
      refetched += reg.counters.blobBytesServed - cleanBytes;
    }
    expect(faults, 'the fault rule never fired: the test proves nothing').toBeGreaterThan(RUNS / 2);
    if (!kind.slowOnly) expect(retries + resumes).toBeGreaterThan(0);
    if (kind.resumes) {
      expect(resumes).toBeGreaterThan(0);
      // a restart would re-fetch about half a blob per interruption; resuming re-fetches (next to) nothing
      expect(refetched).toBeLessThan((resumes * blobTotal) / 100);
    }
    if (process.env.SHOW_FIGURES) console.log(kind.name, { faults, retries, resumes, refetched });
  });
});

describe('Retry-After', () => {
  it('is honoured (up to the backoff cap): a 429 with Retry-After: 1 waits a second, not the 5 ms backoff', async () => {
    reg.setFaults([{ kind: 'status', status: 429, retryAfter: 1, route: 'manifest', times: 1 }]);
    const { log, counts } = countingLog();
    const t0 = Date.now();
    const got = await pullTo(reg, 'res/app:v1', join(tmp.dir, 'retry-after.tar'), log, {
      retry: { times: 3, baseDelayMs: 5, maxDelayMs: 5000 },
      timeoutMs: 2000,
    });
    expect(got.equals(reference)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(counts.lines.find((l) => l.startsWith('retry '))).toMatch(/after HTTP 429 in 1000 ms/);
  });
});

describe('bearer token auth under faults', () => {
  it('token answers cut off mid-body (50%) and blob resets (20%): every pull succeeds, no secret in the log', async () => {
    const authed = await startRegistry({ auth: { mode: 'bearer', users: { alice: 'pw-Secret-123' } } });
    try {
      await seedImage(authed, 'res/app', 'v1', faultImage());
      let tokenFaults = 0;
      for (let run = 0; run < 8; run++) {
        authed.setFaults({
          seed: 4000 + run,
          rules: [
            { kind: 'truncate', route: 'token', probability: 0.5 },
            { kind: 'reset', route: ['manifest', 'blob'], method: 'GET', probability: RATE },
          ],
        });
        authed.resetCounters();
        const { log, counts } = countingLog();
        const got = await pullTo(authed, 'res/app:v1', join(tmp.dir, `authed-${run}.tar`), log, {
          ...FAST_NET,
          creds: { username: 'alice', password: 'pw-Secret-123' },
        }).catch((e: Error) => {
          throw new Error(`run ${run} failed: ${e.message}\n${counts.lines.join('\n')}`);
        });
        expect(got.equals(reference)).toBe(true);
        expect(counts.lines.join('\n')).not.toContain('pw-Secret-123');
        tokenFaults += authed.log.filter((e) => e.route === 'token' && e.faults?.length).length;
      }
      expect(tokenFaults).toBeGreaterThan(0);
    } finally {
      await authed.close();
    }
  });
});
