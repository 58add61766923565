/**
 * Just enough of Python's `json` module to reproduce stream_layered_image.py byte for byte.
 *
 * Own parser instead of JSON.parse because JSON.parse loses two things Python keeps: the key order of objects
 * whose keys look like integers (V8 moves "8080" before "a"), and the exact value of integers beyond 2^53.
 * Both would change the image config bytes and therefore its digest.
 */

export type PyJson = null | boolean | string | PyNumber | PyJson[] | PyObject;

/** A JSON number as Python holds it: an int (exact, arbitrary size) or a float. */
export class PyNumber {
  constructor(
    readonly raw: string,
    readonly isInt: boolean,
  ) {}
  toNumber(): number {
    return Number(this.raw);
  }
}

/** A dict: insertion-ordered; duplicate keys keep the first position and the last value, like dict(pairs). */
export class PyObject {
  readonly map = new Map<string, PyJson>();
  get(k: string): PyJson | undefined {
    return this.map.get(k);
  }
  set(k: string, v: PyJson): void {
    this.map.set(k, v);
  }
  has(k: string): boolean {
    return this.map.has(k);
  }
  entries(): IterableIterator<[string, PyJson]> {
    return this.map.entries();
  }
  static from(pairs: Array<[string, PyJson]>): PyObject {
    const o = new PyObject();
    for (const [k, v] of pairs) o.set(k, v);
    return o;
  }
}

export class PyJsonSyntaxError extends Error {}

/** json.loads for standard JSON. */
export function pyJsonParse(text: string): PyJson {
  let i = 0;
  const fail = (what: string): never => {
    throw new PyJsonSyntaxError(`${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const value = (): PyJson => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o = new PyObject();
      ws();
      if (text[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const k = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        o.set(k, value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return o;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const a: PyJson[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return a;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) return ((i += 4), true);
    if (text.startsWith('false', i)) return ((i += 5), false);
    if (text.startsWith('null', i)) return ((i += 4), null);
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return new PyNumber(m[0], !m[1] && !m[2]);
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      const j = i;
      while (i < text.length && text[i] !== '"' && text[i] !== '\\') {
        if (text.charCodeAt(i) < 0x20) fail('control character in string');
        i++;
      }
      out += text.slice(j, i);
      if (i >= text.length) fail('unterminated string');
      if (text[i] === '"') {
        i++;
        return out;
      }
      const e = text[i + 1];
      i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const h = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape');
          out += String.fromCharCode(parseInt(h, 16));
          i += 4;
          break;
        }
        default:
          fail('bad escape');
      }
    }
  };
  const v = value();
  ws();
  if (i !== text.length) fail('extra data');
  return v;
}

/** json.dumps(obj, indent=4) with the defaults ensure_ascii=True, separators (",", ": "). */
export function pyJsonDumps(v: PyJson, indent = 4): string {
  const out: string[] = [];
  const emit = (x: PyJson, level: number) => {
    if (x === null) out.push('null');
    else if (x === true) out.push('true');
    else if (x === false) out.push('false');
    else if (typeof x === 'string') out.push(pyJsonString(x));
    else if (x instanceof PyNumber) out.push(pyNumberRepr(x));
    else if (Array.isArray(x)) {
      if (x.length === 0) return void out.push('[]');
      const pad = '\n' + ' '.repeat(indent * (level + 1));
      out.push('[');
      x.forEach((e, n) => {
        out.push(n ? ',' + pad : pad);
        emit(e, level + 1);
      });
      out.push('\n' + ' '.repeat(indent * level) + ']');
    } else {
      if (x.map.size === 0) return void out.push('{}');
      const pad = '\n' + ' '.repeat(indent * (level + 1));
      out.push('{');
      let n = 0;
      for (const [k, e] of x.entries()) {
        out.push((n++ ? ',' : '') + pad + pyJsonString(k) + ': ');
        emit(e, level + 1);
      }
      out.push('\n' + ' '.repeat(indent * level) + '}');
    }
  };
  emit(v, 0);
  return out.join('');
}

/** A JSON string with ensure_ascii: everything outside ' '..'~' escaped, UTF-16 units as \uXXXX. */
export function pyJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else out += '\\u' + c.toString(16).padStart(4, '0');
  }
  return out + '"';
}

/** int → exact decimal; float → float.__repr__ (shortest round-trip, Python's fixed/exponent switch). */
export function pyNumberRepr(n: PyNumber): string {
  if (n.isInt) return BigInt(n.raw).toString();
  const x = n.toNumber();
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : x < 0 ? '-Infinity' : 'NaN';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expS] = x.toExponential().split('e') as [string, string];
  const exp = Number(expS);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp >= -5 + 1 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1) || '0';
      body = `${intPart}.${frac}`;
    } else {
      body = `0.${'0'.repeat(-exp - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return (neg ? '-' : '') + body;
}

/** repr(str), as print() and f-strings show list elements: quote choice and escapes of CPython. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c < 0x7f || (c > 0xa0 && isPrintable(ch))) out += ch;
    else if (c <= 0xff) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c <= 0xffff) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return out + quote;
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;
const isPrintable = (ch: string) => !NON_PRINTABLE.test(ch);

/** str(list_of_str): "['a', 'b']". */
export function pyListRepr(items: readonly string[]): string {
  return '[' + items.map(pyRepr).join(', ') + ']';
}
