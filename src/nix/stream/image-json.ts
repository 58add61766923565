import { usageError } from '../../errors.js';
import { PyObject, pyJsonDumps, pyListRepr, type PyJson } from './py-json.js';
import type { StreamConf } from './conf.js';
import type { ImageLayer } from './prepared-image.js';

/**
 * The two JSON members of the outer tar, byte for byte as stream_layered_image.py writes them: the image config
 * (`<sha256>.json`) and manifest.json, both `json.dumps(obj, indent=4)` without a trailing newline.
 */

/**
 * What the config needs of an image: the conf, the base image's `config` object, each layer's history paths.
 * A PreparedImage is one; so is any other model of a conf image (a push's lazily planned layers), without a cast.
 */
export interface ImageConfigParts {
  conf: StreamConf;
  base?: { config: PyObject };
  layers: ReadonlyArray<Pick<ImageLayer, 'paths'>>;
}

/** What manifest.json needs: the tag and, per layer, its kind and paths (a base layer keeps its member name). */
export interface ImageManifestParts {
  repoTag: string;
  layers: ReadonlyArray<Pick<ImageLayer, 'kind' | 'paths'>>;
}

/** Name of a layer in the outer tar and in manifest.json (base layers keep their member name). */
export function layerMemberName(l: Pick<ImageLayer, 'kind' | 'paths'>, diffID: string): string {
  return l.kind === 'base' ? l.paths[0]! : `${diffID.slice('sha256:'.length)}/layer.tar`;
}

/** The image config JSON bytes, exactly as the script writes them (json.dumps indent=4, no newline). */
export function buildImageConfig(img: ImageConfigParts, diffIDs: readonly string[]): Buffer {
  const { conf } = img;
  const history = img.layers.map((l) =>
    PyObject.from([
      ['created', conf.created.iso],
      ['comment', `store paths: ${pyListRepr(l.paths)}`],
    ]),
  );
  const obj = PyObject.from([
    ['created', conf.created.iso],
    ['architecture', conf.architecture],
    ['os', 'linux'],
    ['config', overlayBaseConfig(img.base?.config, conf.config)],
    [
      'rootfs',
      PyObject.from([
        ['diff_ids', [...diffIDs]],
        ['type', 'layers'],
      ]),
    ],
    ['history', history],
  ]);
  return Buffer.from(pyJsonDumps(obj), 'utf8');
}

export function buildManifest(img: ImageManifestParts, diffIDs: readonly string[], configName: string): Buffer {
  const m = [
    PyObject.from([
      ['Config', configName],
      ['RepoTags', [img.repoTag]],
      ['Layers', img.layers.map((l, i) => layerMemberName(l, diffIDs[i]!))],
    ]),
  ];
  return Buffer.from(pyJsonDumps(m), 'utf8');
}

/** overlay_base_config: base Env then new Env, deduplicated by name (last value, first position). */
function overlayBaseConfig(baseConfig: PyObject | undefined, finalConfig: PyObject): PyObject {
  if (!baseConfig) return finalConfig;
  const envOf = (o: PyObject, what: string): string[] => {
    const v = o.get('Env');
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) throw usageError(`${what} config.Env must be a list of strings`);
    return v as string[];
  };
  const all = [...envOf(baseConfig, 'from_image'), ...envOf(finalConfig, 'conf')];
  if (all.length === 0) return finalConfig;
  const resolved = new Map<string, string>();
  for (const e of all) resolved.set(e.split('=', 1)[0]!, e);
  const out = PyObject.from([...finalConfig.entries()]);
  out.set('Env', [...resolved.values()] as PyJson);
  return out;
}
