import { usageError } from '../../errors.js';
import { PyObject, type PyJson } from './py-json.js';

/** The largest uid/gid a tar header (PAX or GNU base-256) and the Linux kernel both take: 2^32 - 2. */
export const MAX_ID = 0xfffffffe;

/** A conf's `uid`/`gid`: a non-negative integer that fits a Linux id; GNU tar refuses negative PAX ids. */
export function checkId(origin: string, key: string, n: number): number {
  if (n < 0 || n > MAX_ID) throw usageError(`${origin}: key "${key}" must be between 0 and ${MAX_ID}, got ${n}`);
  return n;
}

const STRING_LISTS = ['Env', 'Cmd', 'Entrypoint', 'OnBuild', 'Shell'] as const;
const STRINGS = ['User', 'WorkingDir', 'StopSignal'] as const;
const STRING_MAPS = ['Labels'] as const;
const OBJECTS = ['ExposedPorts', 'Volumes'] as const;

/**
 * The fields of an image config that the OCI image spec types
 * (https://github.com/opencontainers/image-spec/blob/main/config.md#properties): a value of another type makes
 * docker and containerd fail to unmarshal the config, so it is refused here with the field named. null means
 * absent, as in Go's encoding/json. An `Env` entry without `=` is accepted, as docker does.
 */
export function checkImageConfig(origin: string, config: PyObject): void {
  const where = (k: string) => `${origin}: config.${k}`;
  for (const k of STRING_LISTS) {
    const v = config.get(k);
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) throw usageError(`${where(k)} must be a list of strings`);
  }
  for (const k of STRINGS) {
    const v = config.get(k);
    if (v !== undefined && v !== null && typeof v !== 'string') throw usageError(`${where(k)} must be a string`);
  }
  for (const k of STRING_MAPS) {
    const v = config.get(k);
    if (v === undefined || v === null) continue;
    if (!(v instanceof PyObject) || [...v.entries()].some(([, e]) => typeof e !== 'string')) throw usageError(`${where(k)} must be an object of strings`);
  }
  for (const k of OBJECTS) {
    const v = config.get(k);
    if (v !== undefined && v !== null && !(v instanceof PyObject)) throw usageError(`${where(k)} must be an object`);
  }
  const env = config.get('Env');
  if (Array.isArray(env))
    for (const e of env as PyJson[])
      if ((e as string).startsWith('=')) throw usageError(`${where('Env')} has an entry without a name: ${JSON.stringify(e).slice(0, 100)}`);
}
