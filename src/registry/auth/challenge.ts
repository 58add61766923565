/**
 * WWW-Authenticate parsing with docker/distribution's `authchallenge` grammar, which both skopeo and crane use:
 * scheme lower-cased, then comma-separated key=token or key="quoted" pairs, backslash escapes inside quotes,
 * keys lower-cased, one challenge per header line, several header lines allowed.
 *
 * Own code rather than the `www-authenticate` package: that parser keeps key and scheme case as sent, treats
 * `""` (not `\"`) as the quote escape, and fails on the whole header on anything unexpected - distribution
 * registries send lower/upper-case `Bearer`, and realms with escaped characters must survive intact.
 */
export interface Challenge {
  scheme: string; // 'basic' | 'bearer' | ...
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

function skipSpace(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

function readToken(s: string, i: number): [string, number] {
  const start = i;
  while (i < s.length && TOKEN_CHAR.test(s[i]!)) i++;
  return [s.slice(start, i), i];
}

function readQuoted(s: string, i: number): [string, number] | undefined {
  // s[i] === '"'
  let out = '';
  for (i++; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      i++;
      if (i >= s.length) return undefined;
      out += s[i];
    } else if (c === '"') return [out, i + 1];
    else out += c;
  }
  return undefined; // unterminated
}

/** Parse one header line into a challenge; undefined if there is no scheme. Malformed trailing params are dropped. */
export function parseChallenge(header: string): Challenge | undefined {
  let i = skipSpace(header, 0);
  const [scheme, j] = readToken(header, i);
  if (!scheme) return undefined;
  i = j;
  const params: Record<string, string> = {};
  for (;;) {
    i = skipSpace(header, i);
    const [key, k] = readToken(header, i);
    if (!key) break;
    i = skipSpace(header, k);
    if (header[i] !== '=') break;
    i = skipSpace(header, i + 1);
    let value: string;
    if (header[i] === '"') {
      const q = readQuoted(header, i);
      if (!q) break;
      [value, i] = q;
    } else {
      [value, i] = readToken(header, i);
    }
    params[key.toLowerCase()] = value;
    i = skipSpace(header, i);
    if (header[i] !== ',') break;
    i++;
  }
  return { scheme: scheme.toLowerCase(), params };
}

/** Parse every WWW-Authenticate header line (undici gives a string or an array). */
export function parseChallenges(headers: string | string[] | undefined): Challenge[] {
  if (headers === undefined) return [];
  const lines = Array.isArray(headers) ? headers : [headers];
  return lines.map(parseChallenge).filter((c): c is Challenge => c !== undefined);
}

/** The first challenge nixreg can answer, in header order (c/image): basic or bearer. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'basic' || c.scheme === 'bearer');
}
