import { sha256Hex, hexOf } from '../digest/sha256.js';
import { goCompactHTML, goSortedObject, goString, topLevelRawMembers } from './go-json.js';

/**
 * Legacy (`docker save` v1.0) layer IDs and their `<id>/json` files, exactly as containers/image ≥ v5.6.0
 * writes them (containers/image docker/internal/tarfile/writer.go): the ID hashes the layer's legacy config with a temporary `layer_id` set to the
 * ChainID, so it depends on every lower layer; the top layer also carries seven values copied from the
 * image config as compacted, HTML-escaped raw JSON.
 */

/** The config keys copied into the top layer's json, in c/image's order (the output is key-sorted anyway). */
export const TOP_LAYER_CONFIG_KEYS = ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os'] as const;

export interface LegacyLayer {
  id: string; // 64 hex
  diffID: string; // sha256:<hex>
  json: Buffer; // contents of <id>/json
}

/** `diffIDs` are the uncompressed layer digests in manifest order (repeats included). */
export function legacyLayers(diffIDs: readonly string[], configBytes: Buffer): LegacyLayer[] {
  const raw = diffIDs.length ? topLevelRawMembers(configBytes) : new Map<string, Buffer>();
  const out: LegacyLayer[] = [];
  let chain = '';
  let parent = '';
  diffIDs.forEach((d, i) => {
    const m: Record<string, string | Buffer> = {};
    if (parent) m.parent = goString(parent);
    if (i === diffIDs.length - 1) {
      for (const k of TOP_LAYER_CONFIG_KEYS) {
        const v = raw.get(k);
        m[k] = v ? goCompactHTML(v) : 'null';
      }
    }
    chain = i === 0 ? d : 'sha256:' + sha256Hex(chain + ' ' + d);
    const id = sha256Hex(goSortedObject({ ...m, layer_id: goString(chain) }));
    m.id = goString(id);
    out.push({ id, diffID: d, json: goSortedObject(m) });
    parent = id;
  });
  return out;
}

/** `../<diffid-hex>.tar`, the target of `<id>/layer.tar`. */
export const layerFileName = (diffID: string): string => `${hexOf(diffID)}.tar`;
