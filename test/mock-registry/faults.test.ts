import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { startRegistry, type Registry, type FaultRule } from '../../mock-registry/index.js';
import { bytes, errCodes, req, sha, upload } from './http.js';

const blob = bytes(64 * 1024, 11);
let reg: Registry;
let d: string;
let blobUrl: string;
beforeAll(async () => {
  reg = await startRegistry();
  d = await upload(reg.url, 'f/img', blob);
  blobUrl = `${reg.url}/v2/f/img/blobs/${d}`;
});
afterAll(() => reg.close());

/** GET that reports how far the body got and how it ended (reset vs. clean end). */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; got: Buffer; error?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let status = 0;
    const r = request(url, { headers }, (res) => {
      status = res.statusCode!;
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status, got: Buffer.concat(parts), ms: Date.now() - t0 }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ status, got: Buffer.concat(parts), error: e.code ?? e.message, ms: Date.now() - t0 }));
    });
    r.on('error', (e: NodeJS.ErrnoException) => resolve({ status, got: Buffer.concat(parts), error: e.code ?? e.message, ms: Date.now() - t0 }));
    r.end();
  });
}

const withFaults = (rules: FaultRule[], seed?: number) => reg.setFaults({ rules, seed });

describe('fault injection', () => {
  it('429 with Retry-After (TOOMANYREQUESTS body), only on the matching route/method and only `times` times', async () => {
    withFaults([{ kind: 'status', status: 429, retryAfter: 7, route: 'blob', method: 'GET', times: 1 }]);
    expect((await req('HEAD', blobUrl)).status).toBe(200); // method filter
    expect((await req('GET', `${reg.url}/v2/`)).status).toBe(200); // route filter
    const r = await req('GET', blobUrl);
    expect([r.status, r.header('retry-after'), errCodes(r)]).toEqual([429, '7', ['TOOMANYREQUESTS']]);
    expect((await req('GET', blobUrl)).status).toBe(200);
  });

  it('500/502/503 on the chosen routes; skip lets the first requests through', async () => {
    withFaults([
      { kind: 'status', status: 502, route: 'manifest', skip: 1, times: 1 },
      { kind: 'status', status: 503, route: ['ping', 'token'] },
      { kind: 'status', status: 500, route: 'upload', method: 'PATCH' },
    ]);
    expect((await req('GET', `${reg.url}/v2/f/img/manifests/x`)).status).toBe(404); // skipped
    expect((await req('GET', `${reg.url}/v2/f/img/manifests/x`)).status).toBe(502);
    expect((await req('GET', `${reg.url}/v2/f/img/manifests/x`)).status).toBe(404);
    expect((await req('GET', `${reg.url}/v2/`)).status).toBe(503);
    expect((await req('GET', `${reg.url}/token`)).status).toBe(503);
    const p = await req('POST', `${reg.url}/v2/f/img/blobs/uploads/`);
    expect(p.status).toBe(202);
    expect((await req('PATCH', `${reg.url}${p.header('location')}`, { body: 'abc' })).status).toBe(500);
  });

  it('resets the connection after part of a blob body', async () => {
    withFaults([{ kind: 'reset', route: 'blob', afterBytes: 10_000, times: 1 }]);
    const r = await rawGet(blobUrl);
    expect(r.status).toBe(200);
    expect(r.error).toMatch(/ECONNRESET|aborted/);
    expect(r.got.length).toBeLessThanOrEqual(10_000);
    expect(r.got.equals(blob.subarray(0, r.got.length))).toBe(true);
    const ok = await rawGet(blobUrl);
    expect([ok.error, ok.got.equals(blob)]).toEqual([undefined, true]);
    withFaults([{ kind: 'reset', route: 'upload', method: 'PATCH', times: 1 }]);
    const p = await req('POST', `${reg.url}/v2/f/img/blobs/uploads/`);
    await expect(req('PATCH', `${reg.url}${p.header('location')}`, { body: 'abc' })).rejects.toThrow(/ECONNRESET|socket hang up/);
    const s = await req('GET', `${reg.url}${p.header('location')}`);
    expect([s.status, s.header('range')]).toEqual([204, '0-0']);
  });

  it('flips exactly one byte of the body while the headers still name the true digest', async () => {
    withFaults([{ kind: 'flip', route: 'blob', afterBytes: 1234, times: 1 }]);
    const r = await req('GET', blobUrl);
    expect(r.header('docker-content-digest')).toBe(d);
    expect(r.body.length).toBe(blob.length);
    const diffs = [...r.body.keys()].filter((i) => r.body[i] !== blob[i]);
    expect(diffs).toEqual([1234]);
    expect(r.body[1234]).toBe(blob[1234]! ^ 0xff);
    expect(sha(r.body)).not.toBe(d);
    expect((await req('GET', blobUrl)).body.equals(blob)).toBe(true); // stored bytes untouched
  });

  it('ignores Range: 200 with the whole body', async () => {
    withFaults([{ kind: 'ignore-range', route: 'blob', times: 1 }]);
    const r = await req('GET', blobUrl, { headers: { Range: 'bytes=100-' } });
    expect([r.status, r.header('content-range'), r.body.equals(blob)]).toEqual([200, undefined, true]);
    const ok = await req('GET', blobUrl, { headers: { Range: 'bytes=100-' } });
    expect([ok.status, ok.body.equals(blob.subarray(100))]).toEqual([206, true]);
  });

  it('drips the body slowly but correctly', async () => {
    withFaults([{ kind: 'drip', route: 'blob', dripBytes: 16 * 1024, dripIntervalMs: 60, times: 1 }]);
    const r = await rawGet(blobUrl);
    expect(r.got.equals(blob)).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(3 * 60 - 10); // 4 pieces, 3 pauses
  });

  it('stalls before the headers, or mid-body, for stallMs; a stall without end holds until the client leaves', async () => {
    withFaults([{ kind: 'stall', route: 'manifest', stallMs: 300, times: 1 }]);
    const t0 = Date.now();
    expect((await req('GET', `${reg.url}/v2/f/img/manifests/x`)).status).toBe(404);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    withFaults([{ kind: 'stall', route: 'blob', afterBytes: 5000, stallMs: 300, times: 1 }]);
    const r = await rawGet(blobUrl);
    expect([r.got.equals(blob), r.ms >= 290]).toEqual([true, true]);

    withFaults([{ kind: 'stall', route: 'blob', afterBytes: 100 }]);
    const forever = await req('GET', blobUrl, { timeoutMs: 300 }).catch((e: Error) => e);
    expect(String(forever)).toMatch(/timeout|aborted|socket hang up/);
  });

  it('is deterministic for a seed: the same request sequence meets the same faults', async () => {
    const run = async (seed: number) => {
      withFaults([{ kind: 'status', status: 503, route: 'ping', probability: 0.5 }], seed);
      const out: number[] = [];
      for (let i = 0; i < 24; i++) out.push((await req('GET', `${reg.url}/v2/`)).status);
      return out;
    };
    const a = await run(42);
    expect(await run(42)).toEqual(a);
    expect(a).toContain(503);
    expect(a).toContain(200);
    expect(await run(7)).not.toEqual(a);
    withFaults([]);
  });

  it('counts injected faults and names them in the log', async () => {
    const before = reg.counters.faultsInjected;
    withFaults([{ kind: 'status', status: 500, route: 'tags', times: 1 }]);
    expect((await req('GET', `${reg.url}/v2/f/img/tags/list`)).status).toBe(500);
    await new Promise((r) => setTimeout(r, 20));
    expect(reg.counters.faultsInjected - before).toBe(1);
    expect(reg.log.at(-1)).toMatchObject({ route: 'tags', status: 500, faults: ['status 500'] });
  });
});
