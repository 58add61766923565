/**
 * The parts of Go's `encoding/json` output that the docker-archive writer's metadata depends on (https://pkg.go.dev/encoding/json: HTML-safe escapes, U+2028/2029 escaped, map keys sorted).
 * Own code because no JS serializer reproduces Go byte for byte: Go re-marshals `json.RawMessage` values by
 * compacting the original text (key order inside objects kept, existing escapes and number text kept) while
 * HTML-escaping `<`, `>`, `&` and U+2028/U+2029, and it sorts `map[string]any` keys by bytes. JSON.parse +
 * JSON.stringify would lose escapes like `\u00e9`, number spellings and would not HTML-escape.
 */

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const HEX = '0123456789abcdef';

/**
 * Go `appendCompact(dst, src, escape=true)`: drop whitespace outside strings, copy everything else as is,
 * except `<`, `>`, `&` → `\u003c`, `\u003e`, `\u0026` and U+2028/U+2029 (E2 80 A8/A9) → `\u2028`/`\u2029`.
 * The input must be valid JSON (it comes from a config that was already parsed).
 */
export function goCompactHTML(src: Buffer): Buffer {
  const out: number[] = [];
  let inString = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (!inString && WS.has(c)) continue;
    if (c === 0x3c || c === 0x3e || c === 0x26) {
      out.push(0x5c, 0x75, 0x30, 0x30, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 0xf));
      continue;
    }
    if (c === 0xe2 && src[i + 1] === 0x80 && (src[i + 2]! & ~1) === 0xa8) {
      out.push(0x5c, 0x75, 0x32, 0x30, 0x32, HEX.charCodeAt(src[i + 2]! & 0xf));
      i += 2;
      continue;
    }
    out.push(c);
    if (inString) {
      if (c === 0x5c)
        out.push(src[++i]!); // keep the escaped char (it may be a quote)
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
  }
  return Buffer.from(out);
}

/** Go's string encoder with HTML escaping (json.Marshal of a string). */
export function goString(s: string): string {
  let r = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') r += '\\"';
    else if (ch === '\\') r += '\\\\';
    else if (ch === '\n') r += '\\n';
    else if (ch === '\r') r += '\\r';
    else if (ch === '\t') r += '\\t';
    else if (cp < 0x20 || ch === '<' || ch === '>' || ch === '&' || cp === 0x2028 || cp === 0x2029) r += '\\u' + cp.toString(16).padStart(4, '0');
    else if (cp >= 0xd800 && cp <= 0xdfff)
      r += '\\ufffd'; // lone surrogate = invalid UTF-8 in Go
    else r += ch;
  }
  return r + '"';
}

/**
 * Go's encoding of a `map[string]any`: keys sorted by their UTF-8 bytes, compact. Values are raw JSON text
 * (already in Go form: use goString / goCompactHTML / 'null').
 */
export function goSortedObject(members: Record<string, string | Buffer>): Buffer {
  const keys = Object.keys(members).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const parts: Buffer[] = [Buffer.from('{')];
  keys.forEach((k, i) => {
    parts.push(Buffer.from((i ? ',' : '') + goString(k) + ':'));
    const v = members[k]!;
    parts.push(typeof v === 'string' ? Buffer.from(v) : v);
  });
  parts.push(Buffer.from('}'));
  return Buffer.concat(parts);
}

/**
 * The raw text of every top-level member of a JSON object, like Go's `json.Unmarshal` into
 * `map[string]json.RawMessage` (keys unescaped, a repeated key keeps its last value). A tiny scanner, so
 * the value bytes stay exactly as in the input.
 */
export function topLevelRawMembers(json: Buffer): Map<string, Buffer> {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`config JSON: ${why} at byte ${i}`);
  };
  const ws = () => {
    while (i < json.length && WS.has(json[i]!)) i++;
  };
  const skipString = () => {
    if (json[i] !== 0x22) fail('expected a string');
    i++;
    while (i < json.length && json[i] !== 0x22) i += json[i] === 0x5c ? 2 : 1;
    if (i >= json.length) fail('unterminated string');
    i++;
  };
  const skipValue = () => {
    ws();
    const c = json[i];
    if (c === 0x22) return skipString();
    if (c === 0x7b || c === 0x5b) {
      // nested object/array: track depth, skipping strings so brackets inside them do not count
      let depth = 0;
      do {
        const d = json[i];
        if (d === 0x22) {
          skipString();
          continue;
        }
        if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) depth--;
        i++;
      } while (depth > 0 && i < json.length);
      if (depth !== 0) fail('unbalanced brackets');
      return;
    }
    const start = i; // number, true, false, null
    while (i < json.length && !WS.has(json[i]!) && json[i] !== 0x2c && json[i] !== 0x7d && json[i] !== 0x5d) i++;
    if (i === start) fail('expected a value');
  };
  const out = new Map<string, Buffer>();
  ws();
  if (json[i] !== 0x7b) fail('expected an object');
  i++;
  ws();
  if (json[i] === 0x7d) return out;
  for (;;) {
    ws();
    const ks = i;
    skipString();
    const key = JSON.parse(json.subarray(ks, i).toString('utf8')) as string;
    ws();
    if (json[i] !== 0x3a) fail('expected ":"');
    i++;
    ws();
    const vs = i;
    skipValue();
    out.set(key, json.subarray(vs, i));
    ws();
    if (json[i] === 0x2c) {
      i++;
      continue;
    }
    if (json[i] === 0x7d) return out;
    fail('expected "," or "}"');
  }
}
