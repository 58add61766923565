import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { SourceImage } from '../../src/source/types.js';

/**
 * The contract every source's image keeps (go-containerregistry's pkg/v1/validate does the same for its
 * images): manifest ↔ config ↔ layers agree, and every layer's stored digest and diffID verify when read.
 * Throws an Error naming the first disagreement. Layers are hashed as they stream, never held in memory.
 */
export async function validateImage(image: SourceImage): Promise<void> {
  const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  const fail = (what: string) => {
    throw new Error(`${image.description}: ${what}`);
  };
  if (sha(image.describedManifest) !== image.manifestDigest) fail('manifestDigest is not the sha256 of the described manifest');
  const manifest = JSON.parse(image.describedManifest.toString('utf8')) as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  if (manifest.config.digest !== image.config.digest) fail('manifest and config descriptor name different configs');
  if (sha(image.configBytes) !== image.config.digest) fail('config bytes do not match the config digest');
  if (image.configBytes.length !== image.config.size || manifest.config.size !== image.config.size) fail('config size disagrees');
  const config = JSON.parse(image.configBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
  if (JSON.stringify(config.rootfs?.diff_ids ?? []) !== JSON.stringify(image.diffIDs)) fail("diffIDs are not the config's rootfs.diff_ids");
  if (manifest.layers.length !== image.layers.length || image.layers.length !== image.diffIDs.length) fail('manifest, layers and diffIDs differ in count');
  for (let i = 0; i < image.layers.length; i++) {
    const d = image.layers[i]!;
    if (manifest.layers[i]!.digest !== d.digest || manifest.layers[i]!.size !== d.size) fail(`layer ${i}: manifest and layer descriptor disagree`);
    const stored = await hashStream(await image.openLayer(i));
    if (stored.digest !== d.digest || stored.size !== d.size)
      fail(`layer ${i}: stored bytes are ${stored.digest} (${stored.size} bytes), descriptor says ${d.digest} (${d.size})`);
    const plain = await hashStream(await image.openUncompressedLayer(i));
    if (plain.digest !== image.diffIDs[i]) fail(`layer ${i}: uncompressed bytes are ${plain.digest}, diffID says ${image.diffIDs[i]}`);
  }
}

async function hashStream(s: Readable): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: 'sha256:' + h.digest('hex'), size };
}
