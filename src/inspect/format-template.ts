import { usageError } from '../errors.js';

/**
 * `nixreg inspect --format TEMPLATE`: the subset of Go's text/template (https://pkg.go.dev/text/template) that
 * `skopeo inspect --format` scripts use, over the `--json` fields (`json` is containers/common's report function,
 * which newer skopeo and podman have; skopeo 1.9 lacks it):
 *   {{.Field}}  {{.Field.Sub}}  {{.Labels.KEY}}  {{index .Labels "KEY.WITH.DOTS"}}  {{json .}}  {{json .Field}}
 * Values print as Go prints them: strings as is, lists as `[a b]`, the Labels map as `map[k:v]` (keys sorted),
 * a missing map key as `<no value>`; other objects (Go structs) and lists of them only through `json`. Anything else
 * (pipelines, range, if, other functions) is a usage error naming the action.
 */
export function renderTemplate(template: string, data: unknown, opts: { checkOnly?: boolean } = {}): string {
  // as containers/common report.NormalizeFormat (skopeo): a literal \t is a tab, and the output ends a line
  const normal = template.replaceAll('\\t', '\t');
  const actions = parseTemplate(normal.endsWith('\n') ? normal : `${normal}\n`, template);
  if (opts.checkOnly) return '';
  return actions.map((a) => (typeof a === 'string' ? a : a(data))).join('');
}

type Action = string | ((data: unknown) => string);

const FIELD_PATH = /^(\.|(?:\.[A-Za-z_][A-Za-z0-9_]*)+)$/;

/** Parses the whole template first, so a bad action fails before anything is printed. */
function parseTemplate(text: string, template: string): Action[] {
  const out: Action[] = [];
  let rest = text;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open === -1) {
      if (rest.includes('}}')) throw bad(template, '"}}" without "{{"');
      out.push(rest);
      return out;
    }
    out.push(rest.slice(0, open));
    const close = rest.indexOf('}}', open + 2);
    if (close === -1) throw bad(template, 'unclosed "{{"');
    out.push(parseAction(rest.slice(open + 2, close).trim(), template));
    rest = rest.slice(close + 2);
  }
}

function parseAction(action: string, template: string): Action {
  const json = /^json\s+(\S+)$/.exec(action);
  if (json) {
    const path = fieldPath(json[1]!, template);
    return (d) => JSON.stringify(lookup(d, path, action) ?? null);
  }
  const index = /^index\s+(\S+)\s+"((?:[^"\\]|\\.)*)"$/.exec(action);
  if (index) {
    const path = fieldPath(index[1]!, template);
    const key = JSON.parse(`"${index[2]!}"`) as string;
    return (d) => goPrint(lookup(d, [...path, key], action), action, false);
  }
  if (FIELD_PATH.test(action)) {
    const path = fieldPath(action, template);
    return (d) => {
      const v = lookup(d, path, action);
      // Go prints a nil map as map[] and a nil list as []
      if (v === null && path.length === 1 && path[0]! in NIL_AS) return NIL_AS[path[0]!]!;
      return goPrint(v, action, path.length === 1 && MAP_FIELDS.has(path[0]!));
    };
  }
  throw bad(template, `{{${action}}} is outside the supported subset ({{.Field}}, {{.Labels.KEY}}, {{index .Labels "KEY"}}, {{json .}}, {{json .Field}})`);
}

function fieldPath(s: string, template: string): string[] {
  if (!FIELD_PATH.test(s)) throw bad(template, `"${s}" is not a field like .Digest or .Labels.KEY`);
  return s === '.' ? [] : s.slice(1).split('.');
}

/** The map[string]string fields of skopeo's inspect output. */
const MAP_FIELDS = new Set(['Labels']);
const NIL_AS: Record<string, string> = { Labels: 'map[]', Env: '[]', Entrypoint: '[]', Cmd: '[]' };

const MISSING = Symbol('missing');

/** Walks the path; a missing key of the top-level object is a field that does not exist (Go: an error). */
function lookup(data: unknown, path: string[], action: string): unknown {
  let v: unknown = data;
  for (const [i, key] of path.entries()) {
    if (v === null || v === undefined || v === MISSING) return MISSING;
    if (typeof v !== 'object' || Array.isArray(v)) throw usageError(`--format: {{${action}}}: ${path.slice(0, i).join('.')} has no field ${key}`);
    if (!Object.hasOwn(v, key)) {
      if (i === 0) throw usageError(`--format: {{${action}}}: no field ${key}; the fields are ${Object.keys(data as object).join(', ')}`);
      return MISSING;
    }
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** `isMap`: a Go map (printed map[k:v]); every other object is a Go struct, printed only through json. */
function goPrint(v: unknown, action: string, isMap: boolean): string {
  if (v === MISSING) return '<no value>';
  if (v === null || v === undefined) return '<no value>';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) {
    if (v.some((e) => typeof e === 'object' && e !== null)) throw objectValue(action);
    return `[${v.map(String).join(' ')}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (!isMap || entries.some(([, e]) => typeof e === 'object' && e !== null)) throw objectValue(action);
  return `map[${entries
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, e]) => `${k}:${String(e)}`)
    .join(' ')}]`;
}

const objectValue = (action: string) => usageError(`--format: {{${action}}} is an object; print it with {{json ${action}}}`);
const bad = (template: string, why: string) => usageError(`--format ${JSON.stringify(template.slice(0, 80))}: ${why}`);
