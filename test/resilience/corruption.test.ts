import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type FaultRule, type Registry } from '../../mock-registry/index.js';
import { LAYERS, prettyConfig, sha } from '../helpers/images.js';
import { faultImage, filesIn, runCli, seedImage, tempDir } from './faults-helper.js';

// Corruption: whatever arrives wrong ends in a non-zero exit, one line naming the digest expected and
// the one that arrived, and no output file (nor a temp file beside it). Runs the built CLI: `npm test` builds.
const DIGEST = /sha256:[0-9a-f]{64}/g;

let reg: Registry;
let tmp: ReturnType<typeof tempDir>;
let manifestDigest: string;
const img = faultImage();
const layerDigests = img.layers.map((l) => sha(l.blob));
const configDigest = sha(img.config);

beforeAll(async () => {
  tmp = tempDir('corruption');
  reg = await startRegistry();
  manifestDigest = await seedImage(reg, 'res/app', 'v1', img);
  // same layers, but the config's diff_ids name the first two in the wrong order
  const ids = [LAYERS.L2(), LAYERS.L1(), LAYERS.L3(), LAYERS.L4()].map(sha);
  await seedImage(reg, 'res/bad-config', 'v1', { ...img, config: prettyConfig(ids) });
});
afterAll(async () => {
  await reg?.close();
  tmp?.remove();
});

async function pullFails(name: string, ref: string, faults: FaultRule[], extra: string[] = []) {
  reg.setFaults({ seed: 7, rules: faults });
  const dir = join(tmp.dir, name);
  mkdirSync(dir);
  const r = await runCli(['pull', `${reg.host}/${ref}`, '-o', join(dir, 'image.tar'), '--quiet', '--jobs', '1', '--timeout', '5s', ...extra]);
  reg.setFaults([]);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^nixreg: /);
  expect(filesIn(dir), 'no output file and no temp file may be left').toEqual([]);
  if (process.env.SHOW_MESSAGES) console.log(name, r.code, lines[0]);
  return { code: r.code, message: lines[0]!, digests: lines[0]!.match(DIGEST) ?? [] };
}

describe('corrupted content fails the pull with expected and got digests, and leaves no file', () => {
  it('a flipped byte in a gzip layer blob', async () => {
    // ranged: false: the whole-blob download, not the 4-byte trailer request of the direct path (a flipped hint
    // there only sends the pull down the spool path)
    const r = await pullFails('flip-layer', 'res/app:v1', [{ kind: 'flip', route: 'blob', method: 'GET', ranged: false, skip: 1, times: 1 }]);
    expect(r.code).toBe(5);
    expect(r.message).toMatch(/digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
    const [expected, got] = r.message.match(/expected (sha256:\w+), got (sha256:\w+)/)!.slice(1);
    expect(layerDigests).toContain(expected);
    expect(got).not.toBe(expected);
  });

  it('a flipped byte in the config blob', async () => {
    const r = await pullFails('flip-config', 'res/app:v1', [{ kind: 'flip', route: 'blob', method: 'GET', times: 1 }]);
    expect(r.code).toBe(5);
    expect(r.message).toContain(`digest mismatch: expected ${configDigest}, got sha256:`);
  });

  it('manifest bytes that do not match the digest pulled by', async () => {
    const r = await pullFails('flip-manifest', `res/app@${manifestDigest}`, [{ kind: 'flip', route: 'manifest', method: 'GET' }]);
    expect(r.code).toBe(5);
    expect(r.message).toContain(`digest mismatch: expected ${manifestDigest}, got sha256:`);
    expect(r.digests.filter((d) => d !== manifestDigest)).toHaveLength(1);
  });

  it('a config whose diff_ids do not match the layers', async () => {
    const r = await pullFails('bad-diffids', 'res/bad-config:v1', []);
    expect(r.code).toBe(5);
    expect(r.message).toContain(`layer 0 (${layerDigests[0]}) uncompressed to ${sha(LAYERS.L1())}, but the config's rootfs.diff_ids[0] is ${sha(LAYERS.L2())}`);
  });

  it('a body cut short although Content-Length promised more (every time): resumes, then gives up', async () => {
    const r = await pullFails('truncated', 'res/app:v1', [{ kind: 'truncate', route: 'blob', method: 'GET', skip: 1 }], ['--retry-times', '1']);
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/^nixreg: blob \S+@sha256:[0-9a-f]{64}: download failed after \d+ of \d+ bytes: /);
    expect(layerDigests).toContain(r.digests[0]);
  });
});
