import { usageError } from '../../errors.js';
import { storeFsPath } from '../store-root.js';
import { PyObject, pyJsonParse, type PyJson } from './py-json.js';
import { NotATarError, TarArchive, type TarMember } from './tar-reader.js';

/**
 * conf.from_image: a docker-archive (skopeo/pullImage: `<hex>.tar` members plus legacy dirs) or a previous
 * stream output, possibly gzip'd (buildLayeredImage's `.tar.gz`: `<hex>/layer.tar` members). Like the script we
 * only need manifest.json, the config's rootfs.diff_ids and config.Env, and the layer members themselves,
 * which are copied verbatim (their headers re-serialised as Python's tarfile would).
 */
export interface BaseImage {
  archive: TarArchive;
  /** The base config's `config` object (only Env is used). */
  config: PyObject;
  layers: Array<{ member: TarMember; diffHex: string }>;
}

const SMALL_JSON = 16 * 1024 * 1024;

export async function loadBaseImage(fromImage: string, storeRoot?: string): Promise<BaseImage> {
  const path = storeFsPath(fromImage, storeRoot);
  const bad = (why: string) => usageError(`from_image ${fromImage} ${why}`);
  let archive: TarArchive;
  try {
    archive = await TarArchive.open(path, (m) => m.size <= SMALL_JSON && (m.name === 'manifest.json' || m.name.endsWith('.json')));
  } catch (err) {
    if (err instanceof NotATarError) throw bad(err.message);
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') throw bad(`does not exist${storeRoot ? ` under --store-root ${storeRoot}` : ''}`);
    if (code === 'EISDIR') throw bad('is a directory, not an image archive');
    if ((err as { code?: string }).code?.startsWith('Z_')) throw bad(`is not a valid gzip file (${(err as Error).message})`);
    throw bad(`cannot be read (${(err as Error).message})`);
  }
  const json = async (name: string): Promise<PyJson> => {
    const m = archive.getMember(name);
    if (!m) throw bad(`is not an image: it has no ${name}`);
    try {
      return pyJsonParse((await archive.readMember(m)).toString('utf8'));
    } catch {
      throw bad(`is not an image: ${name} is not valid JSON`);
    }
  };
  const manifest = await json('manifest.json');
  const first = Array.isArray(manifest) ? manifest[0] : undefined;
  if (!(first instanceof PyObject)) throw bad('is not an image: manifest.json is not a list of images');
  const configName = first.get('Config');
  const layerNames = first.get('Layers');
  if (typeof configName !== 'string' || !Array.isArray(layerNames) || layerNames.some((l) => typeof l !== 'string'))
    throw bad('is not an image: manifest.json lacks Config/Layers');
  const image = await json(configName);
  const rootfs = image instanceof PyObject ? image.get('rootfs') : undefined;
  const diffIds = rootfs instanceof PyObject ? rootfs.get('diff_ids') : undefined;
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string')) throw bad('is not an image: its config has no rootfs.diff_ids');
  if (diffIds.length !== layerNames.length) throw bad(`is not a consistent image: ${layerNames.length} layers but ${diffIds.length} diff_ids`);
  const cfg = (image as PyObject).get('config');
  const layers = (layerNames as string[]).map((name, i) => {
    const member = archive.getMember(name);
    if (!member) throw bad(`is not an image: layer ${name.slice(0, 200)} listed in manifest.json is missing`);
    return { member, diffHex: (diffIds[i] as string).replace(/^sha256:/, '') };
  });
  return { archive, config: cfg instanceof PyObject ? cfg : new PyObject(), layers };
}
