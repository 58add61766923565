import { createHash } from 'node:crypto';
import { NixregError } from '../../errors.js';
import type { ByteSink } from '../../nix/stream/sink.js';
import { buildImageConfig, buildManifest, layerMemberName } from '../../nix/stream/image-json.js';
import { DEFAULT_CUSTOMISATION_OWNER, type StreamImageOptions } from '../../nix/stream/image.js';
import type { LayerKind, PreparedImage } from '../../nix/stream/prepared-image.js';
import { pyListRepr } from '../../nix/stream/py-json.js';
import { storeLayerCacheKey, storeLayerChunks, storeLayerDigest, type LayerPassStats } from '../../nix/stream/store-layer.js';
import type { PyTarInfo } from '../../tar/python-pax.js';
import { NixpkgsArchiveWriter, layerMemberPath } from './archive-writer.js';

/**
 * A prepared image (nix/stream/image.ts prepareImage) written as stream_layered_image.py writes it: base layers,
 * store layers, customisation layer, config, manifest.json, in one outer Python-PAX tar (archive-writer.ts).
 */
export interface StreamResult {
  layers: Array<{ kind: LayerKind; diffID: string; size: number; member: string }>;
  config: { name: string; digest: string; size: number };
  manifest: Buffer;
  /** Total bytes of the outer tar. */
  size: number;
  stats: LayerPassStats & { hashedWhileWriting: number };
}

/**
 * Write the whole image. Per store layer:
 * - digest cached → header + one generation straight to the output;
 * - seekable output → header with a placeholder name, one generation hashed on the way, header patched
 *   (the name is the only thing that depends on the digest; the size is known from the plan);
 * - otherwise → one hashing pass (cached for next time), then one generation to the output, like the script.
 */
export async function writeImage(img: PreparedImage, sink: ByteSink, opts: StreamImageOptions = {}): Promise<StreamResult> {
  try {
    return await writeOuterTar(img, sink, opts);
  } finally {
    await img.base?.archive.close();
  }
}

async function writeOuterTar(img: PreparedImage, sink: ByteSink, opts: StreamImageOptions): Promise<StreamResult> {
  const { conf } = img;
  const log = opts.log ?? (() => {});
  const stats = { hashPasses: 0, writePasses: 0, cacheHits: 0, hashedWhileWriting: 0 };
  const owner = opts.customisationOwner ?? DEFAULT_CUSTOMISATION_OWNER;
  const out = new NixpkgsArchiveWriter(sink, conf.mtime);
  const results: StreamResult['layers'] = [];
  if (!img.base) log("No 'fromImage' provided");
  let num = 0;
  for (const l of img.layers) {
    num++;
    if ('base' in l.source) {
      const m = l.source.base.layers[l.source.index]!.member;
      await out.addMember(m.info, { chunks: l.source.base.archive.memberData(m), what: `from_image layer ${m.name}` });
      log(`Adding base layer ${num} from ${m.name}`);
    } else if ('plan' in l.source) {
      log(`Creating layer ${num} from paths: ${pyListRepr(l.paths)}`);
      const plan = l.source.plan;
      let diffID = l.diffID;
      if (!diffID && opts.cache) {
        const hit = await opts.cache.get(storeLayerCacheKey(plan));
        if (hit && hit.size === plan.size) {
          diffID = hit.diffID;
          stats.cacheHits++;
        }
      }
      if (!diffID && !out.canPatch) diffID = (await storeLayerDigest(plan, opts.cache, stats)).diffID;
      stats.writePasses++;
      if (diffID) {
        await out.addMember(out.regular(layerMemberPath(diffID), plan.size), { chunks: storeLayerChunks(plan), what: `layer ${num}` });
      } else {
        const member = await out.beginLayer(plan.size, `layer ${num}`, (name) => out.regular(name, plan.size));
        const h = createHash('sha256');
        try {
          for await (const c of storeLayerChunks(plan)) {
            h.update(c);
            await member.put(c);
          }
        } catch (err) {
          if (err instanceof NixregError) throw err;
          throw new NixregError(`layer ${num}: ${(err as Error).message}`);
        }
        stats.hashedWhileWriting++;
        diffID = 'sha256:' + h.digest('hex');
        await member.finish(diffID);
        await opts.cache?.put(storeLayerCacheKey(plan), { diffID, size: plan.size });
      }
      l.diffID = diffID;
    } else {
      log(`Creating layer ${num} with customisation...`);
      const info: PyTarInfo = { ...out.regular(layerMemberPath(l.diffID!), l.size), ...owner };
      await out.addMember(info, { chunks: l.open(), what: `customisation layer ${l.paths[0]}` });
    }
    results.push({ kind: l.kind, diffID: l.diffID!, size: l.size, member: layerMemberName(l, l.diffID!) });
  }
  log('Adding manifests...');
  const diffIDs = img.layers.map((l) => l.diffID!);
  const config = buildImageConfig(img, diffIDs);
  const configHex = createHash('sha256').update(config).digest('hex');
  const configName = `${configHex}.json`;
  await out.addFile(configName, config);
  const manifest = buildManifest(img, diffIDs, configName);
  await out.addFile('manifest.json', manifest);
  const size = await out.finish();
  log('Done.');
  return {
    layers: results,
    config: { name: configName, digest: `sha256:${configHex}`, size: config.length },
    manifest,
    size,
    stats,
  };
}
