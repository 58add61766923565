import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultProxy, type ProxyRule } from '../helpers/fault-proxy.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';

// `push --output` writes the archive through the writer `nixreg stream` uses: for every fixture conf its bytes
// are those of `nixreg stream`, also when an upload fails mid-way and the layer is generated again (the tee
// rewinds). Against Debian's distribution, through a fault proxy for the network faults.
const repoRoot = join(import.meta.dirname, '../..');
const CASES = readdirSync(join(FIXTURES, 'cases')).sort();

let storeRoot: string;
let tmp: string;
let reg: Distribution;

function nixreg(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const p = spawn('node', [join(repoRoot, 'bin/nixreg.js'), ...args], { env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache'), ...env } });
    let stderr = '';
    p.stdout.resume();
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stderr }));
  });
}

/** `nixreg stream` of a fixture conf, the reference bytes (streamed once per case, with a cache of its own). */
const streamed = new Map<string, Buffer>();
async function streamOf(name: string): Promise<Buffer> {
  const hit = streamed.get(name);
  if (hit) return hit;
  const out = join(tmp, `stream-${name}.tar`);
  const r = await nixreg(['stream', join(FIXTURES, 'cases', name, 'conf.json'), '--store-root', storeRoot, '-o', out], {
    XDG_CACHE_HOME: join(tmp, `cache-stream-${name}`),
  });
  expect(r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
  expect(r.status).toBe(0);
  const bytes = readFileSync(out);
  streamed.set(name, bytes);
  return bytes;
}

/** Byte equality with a readable hint: the first differing offset. */
function expectSameBytes(got: Buffer, want: Buffer): void {
  let i = 0;
  while (i < Math.min(got.length, want.length) && got[i] === want[i]) i++;
  expect({ size: got.length, firstDifference: i === got.length && i === want.length ? -1 : i }).toEqual({ size: want.length, firstDifference: -1 });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-output-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('push --output is byte-identical to nixreg stream', () => {
  for (const name of CASES) {
    it(`${name}: every layer uploaded (CLI)`, async () => {
      const out = join(tmp, `push-${name}.tar`);
      const conf = join(FIXTURES, 'cases', name, 'conf.json');
      const r = await nixreg(
        ['push', conf, `docker://${reg.host}/tee-all/${name}:1`, '--store-root', storeRoot, '--tls-verify=false', '--quiet', '--output', out],
        {
          XDG_CACHE_HOME: join(tmp, `cache-push-${name}`),
        },
      );
      expect(r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
      expect(r.status).toBe(0);
      expectSameBytes(readFileSync(out), await streamOf(name));
    }, 120_000);
  }
});

describe('push --output after a failed upload attempt (the tee rewinds)', () => {
  const faults: Array<{ name: string; rule: ProxyRule; compression?: 'none' }> = [
    // the registry got the whole body, the client a reset: the layer was fully tee'd before the retry
    { name: 'answer to a PATCH lost', rule: { kind: 'drop-answer', method: 'PATCH', path: /\/blobs\/uploads\//, times: 1 } },
    // the connection reset half-way through the body: the retry starts while the member is half written
    { name: 'PATCH reset mid-body', rule: { kind: 'reset-mid-body', method: 'PATCH', path: /\/blobs\/uploads\//, times: 1 }, compression: 'none' },
    // the closing PUT's answer is lost after the layer's member was finished in the archive
    { name: 'answer to the closing PUT lost', rule: { kind: 'drop-answer', method: 'PUT', path: /\/blobs\/uploads\//, times: 1 } },
  ];
  for (const fault of faults)
    for (const fifo of [false, true]) {
      it(`${fault.name}${fifo ? ', into a FIFO' : ''}: the archive still equals stream's`, async () => {
        const name = 'a-defaults';
        const slug = `${fault.name.toLowerCase().replace(/\W+/g, '-')}${fifo ? '-fifo' : ''}`;
        const dir = mkdtempSync(join(tmp, 'retry-'));
        const out = join(dir, 'out.tar');
        if (fifo) {
          const mk = await new Promise<number | null>((res) => spawn('mkfifo', [out]).on('close', res));
          expect(mk).toBe(0);
        }
        const reading = fifo
          ? new Promise<Buffer>((res, rej) => {
              const parts: Buffer[] = [];
              createReadStream(out)
                .on('data', (c) => parts.push(c as Buffer))
                .on('end', () => res(Buffer.concat(parts)))
                .on('error', rej);
            })
          : undefined;
        const proxy = await startFaultProxy(reg.url, [fault.rule]);
        try {
          const r = await pushConf({
            confFile: join(FIXTURES, 'cases', name, 'conf.json'),
            destination: `docker://${proxy.host}/tee-retry/${slug}:1`,
            storeRoot,
            tlsVerify: false,
            cache: new PushCache(join(dir, 'cache')),
            registryCache: false,
            retry: { times: 3, baseDelayMs: 20, maxDelayMs: 100 },
            output: out,
            force: fifo,
            ...(fault.compression ? { compression: fault.compression } : {}),
          });
          expect(proxy.fired).toEqual([1]);
          // a failed PATCH costs one more generation of that layer (through the rewound tee); a lost PUT is asked again
          if (fault.rule.method === 'PATCH') expect(r.stats.layersGenerated).toBe(r.layers.length + 1);
        } finally {
          await proxy.close();
        }
        const got = fifo ? await reading! : readFileSync(out);
        expectSameBytes(got, await streamOf(name));
        expect(readdirSync(dir).sort()).toEqual(['cache', 'out.tar']); // no temp file beside the output
      }, 120_000);
    }
});
