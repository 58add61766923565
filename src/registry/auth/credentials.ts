import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NixregError, usageError } from '../../errors.js';
import { credentialsFromEnv } from './env-credentials.js';

/**
 * Credentials lookup in skopeo's order (containers/image pkg/docker/config/config.go), plus docker's `credsStore` (which c/image lacks but GGCR and
 * docker honour): --creds, --authfile, $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 * ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, $DOCKER_CONFIG/config.json (else ~/.docker/config.json),
 * ~/.dockercfg. The result names its source so 401 messages can say where the (wrong) credentials came from,
 * but never contains a secret in any message.
 */
export type { ResolvedCredentials } from './resolved-credentials.js';
import type { ResolvedCredentials } from './resolved-credentials.js';

export interface CredentialLookupOptions {
  registry: string; // 'docker.io', 'quay.io', '127.0.0.1:5000'
  repository?: string; // 'library/nginx', for namespaced auths keys
  creds?: { username: string; password: string };
  authfile?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

export const ANONYMOUS: ResolvedCredentials = { source: 'none' };

const DOCKER_HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** docker/cli's key normalisation: strip scheme and path; every Docker Hub alias becomes docker.io. */
export function normalizeAuthKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '');
  const slash = k.indexOf('/');
  const host = slash === -1 ? k : k.slice(0, slash);
  if (DOCKER_HUB_KEYS.has(host)) return 'docker.io';
  k = host;
  return k;
}

const displayPath = (p: string, home: string): string => (home && p.startsWith(home + '/') ? '~' + p.slice(home.length) : p);

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}
interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

async function readJson(path: string, legacy: boolean): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new NixregError(`cannot read auth file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The file may hold secrets: never echo its contents.
    throw usageError(`auth file ${path} is not valid JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw usageError(`auth file ${path} is not a JSON object`);
  const file = (legacy ? { auths: parsed } : parsed) as Record<string, unknown>;
  checkShape(file, path);
  return file as AuthFile;
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Reject wrongly typed fields (docker's json.Unmarshal does too) instead of passing an object where a password
 * belongs. Messages name the field and the registry key, never a value: the file holds secrets.
 */
function checkShape(file: Record<string, unknown>, path: string): void {
  const bad = (what: string) => usageError(`auth file ${path}: ${what}`);
  if (file.auths !== undefined && file.auths !== null) {
    if (!isObject(file.auths)) throw bad('"auths" must be an object');
    for (const [key, e] of Object.entries(file.auths)) {
      if (e === null) continue;
      if (!isObject(e)) throw bad(`the entry for "${key.slice(0, 100)}" must be an object`);
      for (const f of ['auth', 'username', 'password', 'identitytoken', 'email', 'registrytoken'])
        if (e[f] !== undefined && e[f] !== null && typeof e[f] !== 'string') throw bad(`"${f}" of "${key.slice(0, 100)}" must be a string`);
    }
  }
  if (file.credHelpers !== undefined && file.credHelpers !== null) {
    if (!isObject(file.credHelpers)) throw bad('"credHelpers" must be an object');
    for (const [key, h] of Object.entries(file.credHelpers))
      if (typeof h !== 'string') throw bad(`credHelpers["${key.slice(0, 100)}"] must be a helper name (a string)`);
  }
  if (file.credsStore !== undefined && file.credsStore !== null && typeof file.credsStore !== 'string') throw bad('"credsStore" must be a string');
}

/** Decode an `auths` entry; undefined when it carries nothing (docker writes `{}` next to a helper). */
function decodeEntry(e: AuthEntry, source: string, key: string): ResolvedCredentials | undefined {
  let username = e.username;
  let password = e.password;
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i === -1)
      throw usageError(
        `the "auth" field of "${key.slice(0, 100)}" in ${source} is not base64 of user:password; log in again (docker login / podman login) or fix that entry`,
      );
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1);
  }
  const out: ResolvedCredentials = { source };
  if (username) out.username = username;
  if (password) out.password = password;
  if (e.identitytoken) out.identityToken = e.identitytoken;
  return out.username || out.password || out.identityToken ? out : undefined;
}

/** Look up `auths`: exact keys from most to least specific (host/ns/repo, host/ns, host), then normalised keys. */
function lookupAuths(auths: Record<string, AuthEntry>, registry: string, repository: string | undefined, source: string) {
  const exact: string[] = [];
  if (repository) {
    const parts = repository.split('/');
    for (let n = parts.length; n >= 1; n--) exact.push(`${registry}/${parts.slice(0, n).join('/')}`);
  }
  exact.push(registry);
  for (const k of exact) {
    const e = Object.hasOwn(auths, k) ? auths[k] : undefined;
    if (e) {
      const c = decodeEntry(e, source, k);
      if (c) return c;
    }
  }
  const want = normalizeAuthKey(registry);
  for (const [k, e] of Object.entries(auths)) {
    if (e && normalizeAuthKey(k) === want) {
      const c = decodeEntry(e, source, k);
      if (c) return c;
    }
  }
  return undefined;
}

const HELPER_NOT_FOUND = 'credentials not found in native keychain';

/** Run `docker-credential-<name> get` with the registry host on stdin. */
export async function runCredentialHelper(
  name: string,
  serverURL: string,
  env: NodeJS.ProcessEnv = process.env,
  missingIsNotFound = false,
): Promise<ResolvedCredentials | undefined> {
  const program = `docker-credential-${name}`;
  const { code, stdout, spawnError } = await new Promise<{ code: number | null; stdout: string; spawnError?: Error }>((resolve) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.resume(); // may contain anything; never surfaced
    child.on('error', (err) => resolve({ code: null, stdout: '', spawnError: err }));
    child.on('close', (c) => resolve({ code: c, stdout: out }));
    child.stdin.on('error', () => {});
    child.stdin.end(serverURL);
  });
  if (spawnError && missingIsNotFound && (spawnError as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  if (spawnError)
    throw new NixregError(`credential helper ${program} could not be run (${(spawnError as NodeJS.ErrnoException).code ?? 'error'}); is it on PATH?`);
  if (code !== 0) {
    if (stdout.trim() === HELPER_NOT_FOUND) return undefined;
    // The output could contain a secret in a broken helper: do not quote it.
    throw new NixregError(`credential helper ${program} failed for ${serverURL} (exit code ${code})`);
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new NixregError(`credential helper ${program} returned output that is not JSON`);
  }
  if (!parsed.Username && !parsed.Secret) return undefined;
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret ?? '', source: program };
  return { username: parsed.Username ?? '', password: parsed.Secret ?? '', source: program };
}

/** The auth files in skopeo's search order, with the flag for the legacy ~/.dockercfg format. */
export function authFileCandidates(o: { authfile?: string; env?: NodeJS.ProcessEnv; home?: string }): { path: string; legacy: boolean }[] {
  const env = o.env ?? process.env;
  const home = o.home ?? env.HOME ?? homedir();
  const files: { path: string; legacy: boolean }[] = [];
  if (o.authfile) files.push({ path: o.authfile, legacy: false });
  else if (env.REGISTRY_AUTH_FILE) files.push({ path: env.REGISTRY_AUTH_FILE, legacy: false });
  else {
    const runtime = env.XDG_RUNTIME_DIR || `/run/containers/${process.getuid?.() ?? 0}`;
    files.push({ path: join(runtime, 'containers', 'auth.json'), legacy: false });
  }
  files.push({ path: join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'), legacy: false });
  files.push({ path: env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json'), legacy: false });
  files.push({ path: join(home, '.dockercfg'), legacy: true });
  return files;
}

/** Find credentials for a registry; ANONYMOUS when nothing applies. */
export async function resolveCredentials(o: CredentialLookupOptions): Promise<ResolvedCredentials> {
  if (o.creds) return { username: o.creds.username, password: o.creds.password, source: '--creds' };
  const env = o.env ?? process.env;
  const fromEnv = credentialsFromEnv(o.registry, env);
  if (fromEnv) return fromEnv;
  const home = o.home ?? env.HOME ?? homedir();
  const helperHost = o.registry === 'docker.io' ? 'https://index.docker.io/v1/' : o.registry;
  for (const { path, legacy } of authFileCandidates({ authfile: o.authfile, env, home })) {
    const file = await readJson(path, legacy);
    if (!file) {
      if (path === o.authfile) throw usageError(`auth file ${path} does not exist`);
      continue;
    }
    const source = displayPath(path, home);
    const helper =
      (file.credHelpers && Object.hasOwn(file.credHelpers, o.registry) ? file.credHelpers[o.registry] : undefined) ??
      Object.entries(file.credHelpers ?? {}).find(([k]) => normalizeAuthKey(k) === normalizeAuthKey(o.registry))?.[1];
    if (helper) {
      const c = await runCredentialHelper(helper, helperHost, env);
      if (c) return { ...c, source: `${c.source} (from ${source})` };
      continue;
    }
    if (file.credsStore) {
      // docker's order: the default store before the inline `auths`. A store whose helper is not installed (a
      // config.json copied from Docker Desktop says "desktop") falls through to `auths` instead of failing.
      const c = await runCredentialHelper(file.credsStore, helperHost, env, true);
      if (c) return { ...c, source: `${c.source} (from ${source})` };
    }
    const fromAuths = file.auths ? lookupAuths(file.auths, o.registry, o.repository, source) : undefined;
    if (fromAuths) return fromAuths;
  }
  return ANONYMOUS;
}

/** Parse `--creds USER[:PASS]` (skopeo syntax). */
export function parseCredsFlag(value: string): { username: string; password: string } {
  const i = value.indexOf(':');
  if (value === '' || i === 0) throw usageError('--creds must be USERNAME[:PASSWORD]');
  return i === -1 ? { username: value, password: '' } : { username: value.slice(0, i), password: value.slice(i + 1) };
}
