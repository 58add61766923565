import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ForwardLayers } from '../../src/export/forward-layers.js';

// export walks layers top-down; a compressed archive can only be read forward. ForwardLayers must open every layer
// of the source once, in forward order, and still hand each layer's exact bytes to a top-down reader.
const LAYERS = Array.from({ length: 5 }, (_, i) => Buffer.alloc(300_000 + i * 1000, 65 + i));

async function bytes(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('ForwardLayers', () => {
  it('a top-down walk opens each layer of the source once, in forward order, and gets its bytes', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nixreg-forward-'));
    const opened: number[] = [];
    const f = new ForwardLayers(async (i) => (opened.push(i), Readable.from([LAYERS[i]!])), tmp);
    try {
      for (let i = LAYERS.length - 1; i >= 0; i--) expect((await bytes(await f.layer(i))).equals(LAYERS[i]!), `layer ${i}`).toBe(true);
      expect(opened).toEqual([0, 1, 2, 3, 4]);
      // the rare second read of the layer that was handed out live goes back to the source
      expect((await bytes(await f.layer(4))).equals(LAYERS[4]!)).toBe(true);
      expect((await bytes(await f.layer(2))).equals(LAYERS[2]!)).toBe(true);
      expect(opened).toEqual([0, 1, 2, 3, 4, 4]);
    } finally {
      await f.close();
      expect(readdirSync(tmp)).toEqual([]); // the spool is gone
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
