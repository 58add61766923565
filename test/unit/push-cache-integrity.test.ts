import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PushCache } from '../../src/sink/registry/push-cache.js';

const hex = (c: string) => c.repeat(64);
const A = { diffID: `sha256:${hex('a')}`, size: 100, inputsKey: 'key-a' };
const B = { diffID: `sha256:${hex('b')}`, size: 200, inputsKey: 'key-b' };
const blobA = { digest: `sha256:${hex('1')}`, size: 10 };
const blobB = { digest: `sha256:${hex('2')}`, size: 20 };
const CODEC = 'gzip-6';

let dir: string;
let cache: PushCache;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nixreg-push-cache-'));
  cache = new PushCache(dir);
  await cache.recordBlob(A, CODEC, blobA, 'reg/app');
  await cache.recordBlob(B, CODEC, blobB, 'reg/app');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const entryFile = async (prefix: string, diffID: string) => {
  const name = (await readdir(dir)).find((f) => f.startsWith(prefix) && f.includes(diffID.slice('sha256:'.length)));
  if (!name) throw new Error(`no ${prefix} entry for ${diffID} in ${dir}`);
  return join(dir, name);
};
const layerFile = (inputsKey: string) => join(dir, `layer-${inputsKey}.json`);
const editJson = async (file: string, edit: (e: Record<string, unknown>) => void) => {
  const e = JSON.parse(await readFile(file, 'utf8'));
  edit(e);
  await writeFile(file, JSON.stringify(e));
};

describe('push cache integrity', () => {
  it('round-trips what it recorded', async () => {
    expect(await cache.getBlob(A.diffID, CODEC)).toMatchObject(blobA);
    expect((await cache.getLayer(A.inputsKey))?.blobs?.[CODEC]).toMatchObject(blobA);
    expect((await cache.getLayer(B.inputsKey))?.diffID).toBe(B.diffID);
  });

  it('two blob entries with their digests swapped are misses, never the other layer’s blob', async () => {
    const fa = await entryFile('blob-', A.diffID);
    const fb = await entryFile('blob-', B.diffID);
    await editJson(fa, (e) => Object.assign(e, blobB));
    await editJson(fb, (e) => Object.assign(e, blobA));
    expect(await cache.getBlob(A.diffID, CODEC)).toBeUndefined();
    expect(await cache.getBlob(B.diffID, CODEC)).toBeUndefined();
  });

  it('a whole blob entry moved under another layer’s name is a miss', async () => {
    const fa = await entryFile('blob-', A.diffID);
    const fb = await entryFile('blob-', B.diffID);
    await rename(fb, fa);
    expect(await cache.getBlob(A.diffID, CODEC)).toBeUndefined();
  });

  it('a layer entry pointing at another layer’s blob or diffID is a miss', async () => {
    await editJson(layerFile(A.inputsKey), (e) => {
      (e.blobs as Record<string, Record<string, unknown>>)[CODEC] = { ...(e.blobs as Record<string, object>)[CODEC], ...blobB };
    });
    expect((await cache.getLayer(A.inputsKey))?.blobs?.[CODEC]).toBeUndefined();
    await editJson(layerFile(B.inputsKey), (e) => Object.assign(e, { diffID: A.diffID }));
    expect(await cache.getLayer(B.inputsKey)).toBeUndefined();
    await rename(layerFile(B.inputsKey), layerFile(A.inputsKey));
    expect(await cache.getLayer(A.inputsKey)).toBeUndefined();
  });

  it('a truncated entry is a miss and the next record replaces it', async () => {
    const fa = await entryFile('blob-', A.diffID);
    const text = await readFile(fa, 'utf8');
    await writeFile(fa, text.slice(0, Math.floor(text.length / 2)));
    expect(await cache.getBlob(A.diffID, CODEC)).toBeUndefined();
    await cache.recordBlob(A, CODEC, blobA, 'reg/app');
    expect(await cache.getBlob(A.diffID, CODEC)).toMatchObject(blobA);
  });

  it('an entry without a checksum (written by an older nixreg or by hand) is a miss', async () => {
    const fa = await entryFile('blob-', A.diffID);
    await editJson(fa, (e) => {
      delete e.sum;
    });
    expect(await cache.getBlob(A.diffID, CODEC)).toBeUndefined();
  });
});
