import { authError, NixregError } from '../../errors.js';
import { headerValue, type Transport } from '../transport.js';
import type { Challenge } from './challenge.js';
import type { ResolvedCredentials } from './credentials.js';

/**
 * Answers the registry's challenge from the /v2/ ping: Basic on every request, or Bearer tokens fetched from the
 * realm (anonymous, Basic creds + account=, or an identity token via POST refresh_token), one per scope set,
 * cached until issued_at + max(expires_in, 60 s), with ONE in-flight fetch shared by concurrent requests
 * (c/image fetches the same token once per concurrent layer; that is wasted round trips, and rate limits).
 */
interface CachedToken {
  token: string;
  expiresAt: number;
}

const MIN_EXPIRES_S = 60;
const TOKEN_BODY_LIMIT = 64 * 1024;

export class Authenticator {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly transport: Transport,
    private readonly registry: string,
    private readonly challenge: Challenge | undefined,
    private readonly creds: () => Promise<ResolvedCredentials>,
    private readonly userAgentClientId = 'nixreg',
    /** Whether credentials may go to this host over plain http (loopback, or --tls-verify=false). */
    private readonly plainHttpAllowed: (hostPort: string) => boolean = () => false,
  ) {}

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /** Authorization header value for these scopes, or undefined (no challenge / anonymous Basic). */
  async authorization(scopes: string[]): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'basic') {
      const c = await this.creds();
      if (c.username === undefined && c.password === undefined) return undefined;
      return 'Basic ' + Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64');
    }
    return 'Bearer ' + (await this.token(scopes));
  }

  /** Drop the cached token for these scopes (after a 401 that says it is no longer good). */
  invalidate(scopes: string[]) {
    this.tokens.delete(keyOf(scopes));
  }

  private async token(scopes: string[]): Promise<string> {
    const key = keyOf(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(scopes, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchToken(scopes: string[], key: string): Promise<string> {
    const realm = this.challenge!.params.realm;
    if (!realm) throw new NixregError(`${this.registry} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new NixregError(`${this.registry} sent a Bearer challenge with an invalid realm`);
    }
    const service = this.challenge!.params.service;
    const c = await this.creds();
    if (url.protocol === 'http:' && c.source !== 'none' && !this.plainHttpAllowed(url.host))
      throw authError(
        `${this.registry} sends its token requests to plain-http ${url.host}; refusing to send credentials from ${c.source} unencrypted (use --tls-verify=false only if that network is trusted)`,
      );
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new NixregError(`${this.registry} sent a Bearer challenge whose realm is not an http(s) URL`);
    const headers: Record<string, string> = {};
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    if (c.identityToken) {
      method = 'POST';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: this.userAgentClientId });
      if (service) form.set('service', service);
      for (const s of scopes) form.append('scope', s);
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (c.username) url.searchParams.set('account', c.username);
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (c.username !== undefined && c.password !== undefined)
        headers.authorization = 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
    }
    const issued = Date.now();
    // bufferBody: a token answer cut off mid-body is retried like one that never came
    const res = await this.transport.request({
      method,
      url: url.toString(),
      headers,
      ...(body !== undefined ? { body } : {}),
      bufferBody: { limit: TOKEN_BODY_LIMIT, what: `token server ${url.host} response` },
    });
    const text = res.bytes ? res.bytes.toString('utf8') : await readLimited(res.body, TOKEN_BODY_LIMIT);
    if (res.status === 401 || res.status === 403) {
      throw authError(
        `${res.status} from the token server ${url.host} for ${this.registry}` +
          (c.source === 'none' ? ' (anonymous): log in or pass --creds' : ` with credentials from ${c.source}: check the username and password`),
      );
    }
    if (res.status < 200 || res.status > 299) throw new NixregError(`token server ${url.host} for ${this.registry} answered HTTP ${res.status}`);
    let json: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      json = JSON.parse(text);
    } catch {
      throw new NixregError(`token server ${url.host} for ${this.registry} returned a body that is not JSON`);
    }
    const token = json.token || json.access_token;
    if (!token) throw new NixregError(`token server ${url.host} for ${this.registry} returned no token`);
    const issuedAt = json.issued_at && !Number.isNaN(Date.parse(json.issued_at)) ? Math.min(Date.parse(json.issued_at), issued) : issued;
    const expiresIn = Math.max(MIN_EXPIRES_S, Number(json.expires_in) || 0);
    // 5% margin so a token never expires between "cached" and "used".
    this.tokens.set(key, { token, expiresAt: issuedAt + expiresIn * 950 });
    return token;
  }
}

const keyOf = (scopes: string[]) => [...new Set(scopes)].sort().join(' ');

export async function readLimited(body: AsyncIterable<Buffer>, limit: number, what = 'response'): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new NixregError(`${what} is larger than ${limit} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export { headerValue };
