import { readFile } from 'node:fs/promises';
import { checkId, checkImageConfig } from './config-check.js';
import { usageError, describeSystemError } from '../../errors.js';
import { PyNumber, PyObject, pyJsonParse, type PyJson } from './py-json.js';

/**
 * The streamLayeredImage conf (what nixpkgs' conf derivation writes and stream_layered_image.py reads),
 * validated up front so that a bad conf fails with one line naming the key before any output byte is written.
 */
export interface StreamConf {
  architecture: string;
  /** conf.config, key order and numbers kept exactly as in the file. */
  config: PyObject;
  storeDir: string;
  fromImage: string | null;
  storeLayers: string[][];
  customisationLayer: string;
  repoTag: string | null;
  /** `created.isoformat()` as Python prints it, and the instant as epoch seconds (float). */
  created: PyTime;
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
}

export interface PyTime {
  iso: string;
  epochSeconds: number;
}

/** Read and validate a conf file. `now` replaces the single datetime.now() the script takes at start. */
export async function loadStreamConf(file: string, now: Date = new Date()): Promise<StreamConf> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read conf ${file}: ${describeSystemError(err)}`);
  }
  return parseStreamConf(text, file, now);
}

export function parseStreamConf(text: string, origin = 'conf', now: Date = new Date()): StreamConf {
  let root: PyJson;
  try {
    root = pyJsonParse(text);
  } catch (err) {
    throw usageError(`${origin}: not valid JSON (${(err as Error).message})`);
  }
  if (!(root instanceof PyObject)) throw usageError(`${origin}: expected a JSON object`);
  const key = (k: string): PyJson => {
    if (!root.has(k)) throw usageError(`${origin}: missing key "${k}"`);
    return root.get(k)!;
  };
  const str = (k: string): string => {
    const v = key(k);
    if (typeof v !== 'string') throw usageError(`${origin}: key "${k}" must be a string`);
    return v;
  };
  const int = (k: string): number => {
    const v = key(k);
    // Python's int(): accepts an int, or a string like " 1_000 " / "+5".
    if (v instanceof PyNumber && v.isInt) return checkSafe(k, Number(v.raw));
    if (typeof v === 'string' && /^\s*[+-]?\d+(_\d+)*\s*$/.test(v)) return checkSafe(k, Number(v.replace(/[_\s]/g, '')));
    throw usageError(`${origin}: key "${k}" must be an integer or a string holding one, got ${clip(JSON.stringify(plain(v)) ?? String(v))}`);
  };
  const checkSafe = (k: string, n: number) => {
    if (!Number.isSafeInteger(n)) throw usageError(`${origin}: key "${k}" is out of range`);
    return n;
  };

  const config = key('config');
  if (!(config instanceof PyObject)) throw usageError(`${origin}: key "config" must be an object`);
  checkImageConfig(origin, config);
  const fromImage = key('from_image');
  if (fromImage !== null && typeof fromImage !== 'string') throw usageError(`${origin}: key "from_image" must be null or a path`);
  const layersV = key('store_layers');
  if (!Array.isArray(layersV)) throw usageError(`${origin}: key "store_layers" must be a list of lists of store paths`);
  const storeDir = str('store_dir');
  const storeLayers = layersV.map((layer, n) => {
    if (!Array.isArray(layer) || layer.some((p) => typeof p !== 'string'))
      throw usageError(`${origin}: store_layers[${n}] must be a list of store path strings`);
    for (const p of layer as string[])
      if (!p.startsWith(storeDir)) throw usageError(`${origin}: store_layers[${n}]: "${clip(p)}" is not under store_dir ${clip(storeDir)}`);
    return layer as string[];
  });
  const repoTagV = root.get('repo_tag');
  if (repoTagV !== undefined && repoTagV !== null && typeof repoTagV !== 'string') throw usageError(`${origin}: key "repo_tag" must be a string`);
  const createdS = str('created');
  const mtimeS = str('mtime');
  const created = createdS === 'now' ? nowTime(now) : parsePyIsoTime(createdS, `${origin}: key "created"`);
  const mtimeT = mtimeS === 'now' ? created : parsePyIsoTime(mtimeS, `${origin}: key "mtime"`);
  return {
    architecture: str('architecture'),
    config,
    storeDir,
    fromImage,
    storeLayers,
    customisationLayer: str('customisation_layer'),
    repoTag: (repoTagV as string | undefined) ?? null,
    created,
    mtime: Math.trunc(mtimeT.epochSeconds),
    uid: checkId(origin, 'uid', int('uid')),
    gid: checkId(origin, 'gid', int('gid')),
    uname: str('uname'),
    gname: str('gname'),
  };
}

/** Quote at most 100 characters of a value from the file: messages stay one short line. */
const clip = (s: string) => (s.length > 100 ? s.slice(0, 100) + '…' : s);

function plain(v: PyJson): unknown {
  if (v instanceof PyNumber) return v.raw;
  if (v instanceof PyObject) return '{...}';
  return v;
}

function nowTime(now: Date): PyTime {
  // datetime.now(tz=timezone.utc).isoformat(): microseconds shown unless zero.
  const ms = now.getTime();
  const base = now.toISOString().slice(0, 19);
  const micro = (((ms % 1000) + 1000) % 1000) * 1000;
  return { iso: `${base}${micro ? '.' + String(micro).padStart(6, '0') : ''}+00:00`, epochSeconds: ms / 1000 };
}

/**
 * datetime.fromisoformat (3.11) for the forms dates are written in: YYYY-MM-DD[T| ]HH:MM[:SS[.ffffff]][Z|±HH:MM[:SS]],
 * and its isoformat() rendering. A time without an offset is naive: Python then uses the local TZ for timestamp().
 */
export function parsePyIsoTime(s: string, what: string): PyTime {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d{1,6})\d*)?)?)?)?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)?)?$/.exec(s);
  if (!m) throw usageError(`${what}: "${clip(s)}" is not an ISO 8601 time (e.g. 1970-01-01T00:00:01+00:00) or "now"`);
  const [, y, mo, d, hh = '00', mi = '00', ss = '00', frac, tz] = m;
  const micro = frac ? Number(frac.padEnd(6, '0')) : 0;
  const Y = Number(y),
    M = Number(mo),
    D = Number(d),
    H = Number(hh),
    MI = Number(mi),
    S = Number(ss);
  const probe = new Date(Date.UTC(Y, M - 1, D, H, MI, S));
  if (probe.getUTCMonth() !== M - 1 || probe.getUTCDate() !== D || H > 23 || MI > 59 || S > 59)
    throw usageError(`${what}: "${clip(s)}" is not a valid date/time`);
  let offsetSec: number | null = null;
  let offsetStr = '';
  if (tz === 'Z') {
    offsetSec = 0;
  } else if (tz) {
    const t = /^([+-])(\d{2}):?(\d{2})?(?::?(\d{2}))?/.exec(tz)!;
    offsetSec = (t[1] === '-' ? -1 : 1) * (Number(t[2]) * 3600 + Number(t[3] ?? 0) * 60 + Number(t[4] ?? 0));
  }
  if (offsetSec !== null) {
    const a = Math.abs(offsetSec);
    const hhmm = `${String(Math.floor(a / 3600)).padStart(2, '0')}:${String(Math.floor((a % 3600) / 60)).padStart(2, '0')}`;
    offsetStr = `${offsetSec < 0 ? '-' : '+'}${hhmm}${a % 60 ? ':' + String(a % 60).padStart(2, '0') : ''}`;
  }
  const p2 = (n: number) => String(n).padStart(2, '0');
  const iso = `${y}-${mo}-${d}T${p2(H)}:${p2(MI)}:${p2(S)}${micro ? '.' + String(micro).padStart(6, '0') : ''}${offsetStr}`;
  const utcMs = Date.UTC(Y, M - 1, D, H, MI, S);
  let epochSeconds: number;
  if (offsetSec !== null) epochSeconds = utcMs / 1000 - offsetSec + micro / 1e6;
  else epochSeconds = new Date(Y, M - 1, D, H, MI, S).getTime() / 1000 + micro / 1e6; // naive: local time
  return { iso, epochSeconds };
}
