import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintStoreLayer, planStoreLayer, releaseLayerChunk, storeLayerChunks, type StoreLayerPlan } from '../../src/nix/stream/store-layer.js';
import { buildStoreTree, removeStoreTree } from '../helpers/store-tree.js';

// Plans are stored compactly and chunk buffers are recycled; neither may change a single byte.
const owner = { mtime: 1700000000, uid: 0, gid: 0, uname: 'root', gname: 'root' };

async function collect(chunks: AsyncIterable<Buffer>, release = false): Promise<{ bytes: Buffer; buffers: Set<ArrayBufferLike>; count: number }> {
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let count = 0;
  for await (const c of chunks) {
    parts.push(Buffer.from(c)); // a copy: the chunk itself is handed back below
    buffers.add(c.buffer);
    count++;
    if (release) releaseLayerChunk(c);
  }
  return { bytes: Buffer.concat(parts), buffers, count };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('store layer: compact plans and recycled chunks', () => {
  let fixtureRoot: string;
  let bigRoot: string;
  const bigPath = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-big';

  beforeAll(async () => {
    fixtureRoot = await buildStoreTree();
    bigRoot = await mkdtemp(join(tmpdir(), 'nixreg-k-'));
    const dir = join(bigRoot, bigPath, 'share');
    await mkdir(dir, { recursive: true });
    const big = Buffer.alloc(3 * 1024 * 1024 + 777);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 9)) & 0xff;
    await writeFile(join(dir, 'big.bin'), big);
    for (let i = 0; i < 300; i++) await writeFile(join(dir, `f${i}`), Buffer.alloc(5000 + i * 13, i & 0xff));
    await symlink('big.bin', join(dir, 'link'));
  });
  afterAll(async () => {
    await removeStoreTree(fixtureRoot);
    await rm(bigRoot, { recursive: true, force: true });
  });

  const plans = async (): Promise<Array<[string, StoreLayerPlan]>> => {
    const fixturePaths = (await readdir(join(fixtureRoot, 'nix/store'))).sort().map((n) => `/nix/store/${n}`);
    return [
      ['fixture closure', await planStoreLayer(fixturePaths, { ...owner, storeRoot: fixtureRoot })],
      ['big files', await planStoreLayer([bigPath], { ...owner, storeRoot: bigRoot })],
    ];
  };

  it("fingerprintStoreLayer is the plan's fingerprint, and both change with a file", async () => {
    for (const [what, plan] of await plans()) expect(fingerprintStoreLayer(plan.paths, plan.options), what).toBe(plan.fingerprint);
    const [, before] = (await plans())[1]!;
    await writeFile(join(bigRoot, bigPath, 'share', 'f7'), Buffer.alloc(5000 + 7 * 13, 1)); // same size, new content
    const after = fingerprintStoreLayer(before.paths, before.options);
    expect(after).not.toBe(before.fingerprint);
    expect((await planStoreLayer(before.paths, before.options)).fingerprint).toBe(after);
  });

  it('a compact plan gives the same bytes as the same entries given as objects', async () => {
    for (const [what, plan] of await plans()) {
      const compact = await collect(storeLayerChunks(plan));
      // a hand-made plan (as single-layer's mergePlans builds) takes the `entries` path
      const objects = await collect(
        storeLayerChunks({ paths: plan.paths, options: plan.options, entries: plan.entries, size: plan.size, fingerprint: plan.fingerprint }),
      );
      expect(compact.bytes.length, what).toBe(plan.size);
      expect(compact.bytes.equals(objects.bytes), what).toBe(true);
    }
  });

  it('released chunks are reused, and two interleaved generators still give exact bytes', async () => {
    const [[, small], [, big]] = await plans();
    const want = [sha((await collect(storeLayerChunks(small!))).bytes), sha((await collect(storeLayerChunks(big!))).bytes)];
    // interleave: each generator's chunk is copied and released before the other generator produces its next one
    const gens = [storeLayerChunks(small!), storeLayerChunks(big!)];
    const parts: Buffer[][] = [[], []];
    const seen = new Set<ArrayBufferLike>();
    let chunks = 0;
    for (let done = [false, false]; !done[0] || !done[1]; ) {
      for (const i of [0, 1]) {
        if (done[i]) continue;
        const r = await gens[i]!.next();
        if (r.done) {
          done[i] = true;
          continue;
        }
        parts[i]!.push(Buffer.from(r.value));
        seen.add(r.value.buffer);
        chunks++;
        r.value.fill(0xee); // a consumer done with it; the generator must not depend on its contents any more
        releaseLayerChunk(r.value);
        releaseLayerChunk(r.value); // a second release is ignored
      }
    }
    expect([sha(Buffer.concat(parts[0]!)), sha(Buffer.concat(parts[1]!))]).toEqual(want);
    expect(chunks).toBeGreaterThan(4);
    expect(seen.size).toBeLessThan(chunks); // memory was reused
  });

  it('a plan stores no object per entry until entries are asked for', async () => {
    const [, [, big]] = await plans();
    const e = big!.entries;
    expect(e.length).toBe(2 + 1 + 1 + 300 + 2); // /nix, /nix/store, the path, share/, 300 files, big.bin, link
    const link = e.find((x) => x.info.type === 'symlink')!;
    expect(Buffer.from(link.info.linkname as Buffer).toString()).toBe('big.bin');
    const bigFile = e.find((x) => x.info.size > 3 * 1024 * 1024)!;
    expect(bigFile.fsPath.toString()).toBe(join(bigRoot, bigPath, 'share/big.bin'));
    expect(big!.entries).toBe(e); // materialised once
  });
});
