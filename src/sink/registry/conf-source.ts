import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { NixregError, describeSystemError } from '../../errors.js';
import { storeFsPath } from '../../nix/store-root.js';
import { describeCustomisationLayer } from '../../nix/stream/customisation.js';
import { loadBaseImage, type BaseImage } from '../../nix/stream/base-image.js';
import {
  buildImageConfig,
  fingerprintStoreLayer,
  planStoreLayer,
  storeLayerCacheKey,
  storeLayerChunks,
  TAR_RULES_VERSION,
  type PreparedImage,
  type StoreLayerPlan,
  type StreamConf,
} from '../../nix/stream/index.js';
import type { PyTarInfo } from '../../tar/python-pax.js';
import { inputsKey } from './push-cache.js';

/**
 * The layers of a streamLayeredImage conf as `nixreg push` needs them: cheap to describe (no store read), and
 * generated only on demand. `nixreg stream` plans every store layer up front (a metadata walk) because it writes
 * every layer anyway; a push of an unchanged image should touch nothing but the cache and the registry, so here
 * a store layer is only walked when its bytes are needed — or, under --store-root (a mutable test/chroot tree
 * rather than an immutable /nix/store), to fingerprint it for the cache key.
 */
export type PushLayerKind = 'base' | 'store' | 'customisation';

export interface PushLayer {
  index: number;
  kind: PushLayerKind;
  /** Store paths (store layers), the customisation layer path, or the base archive member. */
  paths: string[];
  /** Known up front for base and customisation layers; store layers get theirs from the cache or generation. */
  diffID?: string;
  /** Exact tar size when known without generating (base, customisation, planned store layers). */
  size?: number;
  /** Cache key of the layer's inputs (store layers). */
  inputsKey?: string;
  /** Base layers: the member header from the base archive (for --output, which copies it verbatim). */
  tarInfo?: PyTarInfo;
  /** A fresh stream of the uncompressed layer tar (walks the store path tree first if not yet planned). */
  open(): Promise<Readable>;
}

/** An image `nixreg push` can send: layers generated on demand, and the config for their diffIDs. */
export interface PushImage {
  layers: PushLayer[];
  /** Config JSON exactly as `nixreg stream` writes it, for the given diffIDs (layer order). */
  config(diffIDs: readonly string[]): Buffer;
  /** Number of layer generations started (tests and --json: a warm push generates none). */
  readonly generated: number;
  close(): Promise<void>;
}

export interface ConfImage extends PushImage {
  conf: StreamConf;
  base?: BaseImage;
}

export async function loadConfImage(conf: StreamConf, opts: { storeRoot?: string } = {}): Promise<ConfImage> {
  const layers: PushLayer[] = [];
  let generated = 0;
  let base: BaseImage | undefined;
  if (conf.fromImage !== null) {
    base = await loadBaseImage(conf.fromImage, opts.storeRoot);
    const b = base;
    for (const l of b.layers) {
      layers.push({
        index: layers.length,
        kind: 'base',
        paths: [l.member.name],
        diffID: `sha256:${l.diffHex}`,
        size: l.member.size,
        tarInfo: l.member.info,
        open: async () => {
          generated++;
          // a private cursor per read: layers are uploaded in parallel
          return Readable.from(b.archive.openMemberData(l.member), { objectMode: false });
        },
      });
    }
  }
  const owner = { mtime: conf.mtime, uid: conf.uid, gid: conf.gid, uname: conf.uname, gname: conf.gname, storeRoot: opts.storeRoot };
  for (const paths of conf.storeLayers) {
    let plan: StoreLayerPlan | undefined;
    let key: string;
    if (opts.storeRoot) {
      // a tree that may change: the key covers every entry's metadata; the tar layout waits until the layer is needed
      key = storeLayerCacheKey({ paths, options: owner, fingerprint: fingerprintStoreLayer(paths, owner) });
    } else {
      // /nix/store paths are immutable: their names, the owner/mtime settings and the tar rules fix the bytes.
      key = inputsKey({ rules: TAR_RULES_VERSION, paths, mtime: conf.mtime, uid: conf.uid, gid: conf.gid, uname: conf.uname, gname: conf.gname });
    }
    const layer: PushLayer = {
      index: layers.length,
      kind: 'store',
      paths: [...paths],
      ...(plan ? { size: plan.size } : {}),
      inputsKey: key,
      open: async () => {
        plan ??= await planStoreLayer(paths, owner);
        layer.size = plan.size;
        // the tree changed since it was fingerprinted: record what is generated under the key of what was read
        if (opts.storeRoot) layer.inputsKey = storeLayerCacheKey(plan);
        generated++;
        return Readable.from(storeLayerChunks(plan), { objectMode: false });
      },
    };
    layers.push(layer);
  }
  layers.push(await customisationLayer(conf.customisationLayer, layers.length, opts.storeRoot, () => generated++));
  return {
    conf,
    ...(base ? { base } : {}),
    layers,
    // buildImageConfig reads only conf, base.config and each layer's paths (for the history comments).
    config: (diffIDs) => buildImageConfig({ conf, base, layers: layers.map((l) => ({ paths: l.paths })) } as unknown as PreparedImage, diffIDs),
    get generated() {
      return generated;
    },
    close: async () => {
      await base?.archive.close();
    },
  };
}

/**
 * The customisation layer: `layer.tar` + `checksum` (its sha256 hex = the diffID) in the conf's store path.
 * In /nix/store that path is immutable, so it is keyed by name and only read when its bytes are needed; under
 * --store-root (a mutable tree) it is read and validated up front, like `nixreg stream` does.
 */
async function customisationLayer(cust: string, index: number, storeRoot: string | undefined, onOpen: () => void): Promise<PushLayer> {
  const file = storeFsPath(cust, storeRoot) + '/layer.tar';
  const describe = async (): Promise<{ diffID: string; size: number }> => {
    const { diffID, size } = await describeCustomisationLayer(cust, storeRoot);
    return { diffID, size };
  };
  const layer: PushLayer = {
    index,
    kind: 'customisation',
    paths: [cust],
    ...(storeRoot ? await describe() : { inputsKey: inputsKey({ customisation: cust }) }),
    open: async () => {
      if (!layer.diffID) Object.assign(layer, await describe());
      onOpen();
      const s = createReadStream(file, { highWaterMark: 1 << 20 });
      s.on('error', (err) => s.destroy(new NixregError(`cannot read ${file}: ${describeSystemError(err)}`)));
      return s;
    },
  };
  return layer;
}
