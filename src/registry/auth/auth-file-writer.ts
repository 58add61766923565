import { makeDirs } from '../../util/make-dirs.js';
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describeSystemError, NixregError, usageError } from '../../errors.js';
import { removeOnSignal } from '../../util/atomic-file.js';
import { authFileCandidates, normalizeAuthKey } from './credentials.js';

/**
 * Writes the `auths` entries that docker, podman and skopeo read ({"auths": {"host:port": {"auth": base64(user:pass)}}}),
 * keeping every other key of the file. The file is replaced atomically (a 0600 temp file beside it, fsync, rename),
 * so a crash leaves the old file or the new one, and the secret is never readable by other users.
 */

/** The file `login` writes when no --authfile is given: the first one nixreg (and skopeo/podman) reads. */
export function defaultAuthFile(env: NodeJS.ProcessEnv = process.env): string {
  return authFileCandidates({ env })[0]!.path;
}

/** The key an entry is stored under: host[:port], and docker.io for Docker Hub (podman's choice). */
export const authKeyFor = (registry: string): string => normalizeAuthKey(registry);

/** Keys naming the whole registry (`host`, `https://host/v1/`), not one of its namespaces (`host/team`). */
const registryKeys = (auths: Record<string, unknown>, registry: string): string[] =>
  Object.keys(auths).filter(
    (k) =>
      !k
        .replace(/^https?:\/\//, '')
        .replace(/\/v[12]\/?$/, '')
        .includes('/') && normalizeAuthKey(k) === authKeyFor(registry),
  );

type AuthJson = Record<string, unknown> & { auths?: Record<string, unknown> };

async function readAuthJson(path: string): Promise<AuthJson> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new NixregError(`cannot read auth file ${path}: ${describeSystemError(e)}`);
  }
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // it may hold secrets: never quote it
    throw usageError(`auth file ${path} is not valid JSON; fix or remove it (it was left unchanged)`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw usageError(`auth file ${path} is not a JSON object (it was left unchanged)`);
  const file = parsed as AuthJson;
  if (file.auths !== undefined && (file.auths === null || typeof file.auths !== 'object' || Array.isArray(file.auths)))
    throw usageError(`auth file ${path}: "auths" must be an object (it was left unchanged)`);
  return file;
}

async function writeAuthJson(path: string, file: AuthJson): Promise<void> {
  const dir = dirname(path);
  try {
    await makeDirs(dir, 0o700);
  } catch (e) {
    throw new NixregError(`cannot create ${dir} for auth file ${path}: ${describeSystemError(e)}; pass --authfile`);
  }
  const temp = join(dir, `.${basename(path)}.nixreg-${randomBytes(6).toString('hex')}.tmp`);
  const forget = removeOnSignal(temp);
  try {
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(file, null, '\t') + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw new NixregError(`cannot write auth file ${path}: ${describeSystemError(e)}`);
  } finally {
    forget();
  }
}

/** Store `username:password` for `registry` in `path`. */
export async function storeLogin(path: string, registry: string, username: string, password: string): Promise<void> {
  const file = await readAuthJson(path);
  const auths = { ...(file.auths ?? {}) };
  // one entry per registry: drop aliases (https://index.docker.io/v1/ for docker.io) that would shadow the new one
  for (const k of registryKeys(auths, registry)) delete auths[k];
  auths[authKeyFor(registry)] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  await writeAuthJson(path, { ...file, auths });
}

/** Remove `registry`'s entries from `path`; false when it had none. */
export async function removeLogin(path: string, registry: string): Promise<boolean> {
  const file = await readAuthJson(path);
  const auths = { ...(file.auths ?? {}) };
  const keys = registryKeys(auths, registry);
  if (!keys.length) return false;
  for (const k of keys) delete auths[k];
  await writeAuthJson(path, { ...file, auths });
  return true;
}
