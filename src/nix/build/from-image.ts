import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { NixregError, describeSystemError, usageError } from '../../errors.js';

/**
 * Number of layers in a fromImage archive (docker-archive or a streamLayeredImage output, optionally gzip'd), read
 * from its `manifest.json` the way auto-layer.nix counts `usedLayers`. Stops reading at manifest.json.
 */
export async function countBaseLayers(archive: string): Promise<number> {
  let gzip = false;
  try {
    const fh = await open(archive, 'r');
    const magic = Buffer.alloc(2);
    await fh.read(magic, 0, 2, 0);
    await fh.close();
    gzip = magic[0] === 0x1f && magic[1] === 0x8b;
  } catch (err) {
    throw usageError(`cannot read --from-image ${archive}: ${describeSystemError(err)}`);
  }
  const source = createReadStream(archive);
  const ex = extract();
  const manifest = await new Promise<Buffer | null>((resolve, reject) => {
    let found: Buffer | null = null;
    ex.on('entry', (h, stream, next) => {
      if (h.name.replace(/^\.\//, '') !== 'manifest.json') {
        stream.resume();
        stream.on('end', next);
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        found = Buffer.concat(chunks);
        resolve(found);
        source.destroy();
        ex.destroy();
      });
    });
    ex.on('finish', () => resolve(found));
    ex.on('error', (e: Error) => (found ? resolve(found) : reject(e)));
    const input = gzip ? source.pipe(createGunzip()) : source;
    input.on('error', (e: Error) => (found ? resolve(found) : reject(e)));
    input.pipe(ex);
  }).catch((err) => {
    throw new NixregError(`--from-image ${archive} is not a readable image archive: ${describeSystemError(err)}`, 2);
  });
  if (!manifest) throw usageError(`--from-image ${archive} has no manifest.json (not a docker-archive)`);
  try {
    const m = JSON.parse(manifest.toString('utf8')) as { Layers?: unknown }[];
    const layers = m[0]?.Layers;
    if (!Array.isArray(layers)) throw new Error('no Layers list');
    return layers.length;
  } catch (err) {
    throw usageError(`--from-image ${archive}: bad manifest.json (${(err as Error).message})`);
  }
}
