import { createHash } from 'node:crypto';
import { toNix32 } from '../../digest/nixhash.js';
import { usageError } from '../../errors.js';
import { compareCodePoints } from '../layering/graph.js';

/**
 * The streamLayeredImage conf (nixpkgs `conf` derivation, spec 3.1), built from flags instead of Nix. Key order is
 * the one jq produces: baseJson's sorted keys, then the appended keys; uid/gid are strings (jq --arg).
 */
export interface ConfJson {
  architecture: string;
  config: Record<string, unknown>;
  os: 'linux';
  variant: string;
  store_dir: string;
  from_image: string | null;
  store_layers: string[][];
  customisation_layer: string;
  repo_tag: string;
  created: string;
  mtime: string;
  uid: string;
  gid: string;
  uname: string;
  gname: string;
}

export const DEFAULT_TIME = '1970-01-01T00:00:01+00:00';

/** jq's pretty print (2-space indent, trailing newline) of the conf object. */
export function serializeConf(conf: ConfJson): string {
  return JSON.stringify(conf, null, 2) + '\n';
}

/** Node's process.arch → Go's GOARCH, which dockerTools uses for `architecture`. */
export function hostGoArch(arch: string = process.arch): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
  };
  return map[arch] ?? arch;
}

/**
 * `date -Iseconds -d X` as the conf derivation runs it (TZ unset in the build, so UTC): seconds precision,
 * `+00:00`. A value without a zone is read as UTC for the same reason. "now" passes through: the stream takes
 * the time when it runs.
 */
export function normalizeTime(value: string, flag: string): string {
  if (value === 'now') return value;
  const hasZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(value);
  const withZone = hasZone || !/T|\d\d:\d\d/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(withZone);
  if (Number.isNaN(ms)) throw usageError(`${flag}: cannot read "${value}" as a date (use ISO 8601, e.g. 2024-01-31T12:00:00Z, or "now")`);
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, '+00:00');
}

/** Nix's builtins.toJSON orders attribute names by their bytes at every level; the image config keeps that order. */
export function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort(compareCodePoints)
        .map((k) => [k, sortKeysDeep((v as Record<string, unknown>)[k])]),
    );
  return v;
}

export interface ConfigFlags {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  expose?: string[];
  label?: string[];
}

/** An image `config` from flags. `--cmd`/`--entrypoint` take a JSON array or one plain string each (repeatable). */
export function configFromFlags(f: ConfigFlags): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  const argv = (xs: string[] | undefined, flag: string) => {
    if (!xs || xs.length === 0) return undefined;
    return xs.flatMap((x) => {
      if (!x.trimStart().startsWith('[')) return [x];
      let parsed: unknown;
      try {
        parsed = JSON.parse(x);
      } catch {
        throw usageError(`${flag}: "${x}" starts with [ but is not a JSON array of strings`);
      }
      if (!Array.isArray(parsed) || parsed.some((s) => typeof s !== 'string')) throw usageError(`${flag}: expected a JSON array of strings`);
      return parsed as string[];
    });
  };
  const cmd = argv(f.cmd, '--cmd');
  const entrypoint = argv(f.entrypoint, '--entrypoint');
  if (cmd) c.Cmd = cmd;
  if (entrypoint) c.Entrypoint = entrypoint;
  if (f.env?.length) c.Env = f.env;
  if (f.expose?.length) c.ExposedPorts = Object.fromEntries(f.expose.map((p) => [/\//.test(p) ? p : `${p}/tcp`, {}]));
  if (f.label?.length)
    c.Labels = Object.fromEntries(
      f.label.map((l) => {
        const i = l.indexOf('=');
        if (i <= 0) throw usageError(`--label: expected KEY=VALUE, got "${l}"`);
        return [l.slice(0, i), l.slice(i + 1)];
      }),
    );
  if (f.user) c.User = f.user;
  if (f.workdir) c.WorkingDir = f.workdir;
  return sortKeysDeep(c) as Record<string, unknown>;
}

/** Every `/nix/store/<hash>-<name>` mentioned in the config (Cmd = ["${hello}/bin/hello"] etc.): nixpkgs pulls
 * these into the image through baseJson's references, so we add them to the closure roots. */
export function storePathsIn(value: unknown, storeDir = '/nix/store'): string[] {
  const re = new RegExp(`${storeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+`, 'g');
  const found = new Set<string>();
  const visit = (v: unknown) => {
    if (typeof v === 'string') for (const m of v.match(re) ?? []) found.add(m);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(k), visit(x);
  };
  visit(value);
  return [...found].sort(compareCodePoints);
}

/**
 * Default tag when none is given. nixpkgs uses the hash part of the conf derivation's output path, which only Nix can
 * compute; we use the same shape (32 nix-base32 chars) over the conf's content, so equal inputs give equal tags.
 */
export function contentTag(conf: Omit<ConfJson, 'repo_tag'>): string {
  const digest = createHash('sha256').update(JSON.stringify(conf)).digest();
  const compressed = Buffer.alloc(20);
  for (let i = 0; i < digest.length; i++) compressed[i % 20]! ^= digest[i]!;
  return toNix32(compressed);
}
