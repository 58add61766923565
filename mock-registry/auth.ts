import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { RegistryError } from './errors.js';

/**
 * Three auth modes, as real registries do them:
 *  - none;
 *  - basic: every request needs `Authorization: Basic` (401 + `WWW-Authenticate: Basic realm=...` otherwise);
 *  - bearer: Docker's token flow. 401 challenges point at this server's own `/token` endpoint, which checks Basic
 *    credentials (or none, for anonymous) and returns an HMAC-signed token carrying the granted scopes. Each
 *    registry request then needs a token whose scopes cover it (pull / push / delete per repository).
 * Secrets (passwords, tokens) never go into the request log.
 */
export type Action = 'pull' | 'push' | 'delete';
export interface Grant {
  /** user name; "*" = any authenticated user; "" = anonymous */
  user: string;
  /** exact repository name, or a prefix ending in "*" ("team/*", "*") */
  repo: string;
  actions: Action[];
}
export interface AuthOptions {
  mode: 'none' | 'basic' | 'bearer';
  /** user → password */
  users?: Record<string, string>;
  /** a file of `user:password` lines, merged with `users` */
  usersFile?: string;
  /** let requests without credentials pull (and the token endpoint issue anonymous pull tokens) */
  anonymousPull?: boolean;
  /** per-repository permissions; default: every authenticated user may pull, push and delete everywhere */
  grants?: Grant[];
  /** bearer `service` value (default "nixreg-mock") */
  service?: string;
  /** HMAC key for tokens (default: random per start) */
  tokenSecret?: string;
  /** token lifetime in seconds (default 300) */
  tokenTtlSeconds?: number;
}

export interface Scope {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}
export const scopeString = (s: Scope) => `${s.type}:${s.name}:${s.actions.join(',')}`;

export interface AuthResult {
  user?: string; // undefined = anonymous
  scheme: 'none' | 'basic' | 'bearer';
}

interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  access: Scope[];
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class Authenticator {
  readonly mode: AuthOptions['mode'];
  readonly service: string;
  private readonly users = new Map<string, string>();
  private readonly secret: Buffer;
  private readonly ttl: number;
  /** set by the server once the port is known */
  realm = '';

  constructor(private readonly opts: AuthOptions = { mode: 'none' }) {
    this.mode = opts.mode;
    this.service = opts.service ?? 'nixreg-mock';
    this.secret = opts.tokenSecret ? Buffer.from(opts.tokenSecret) : randomBytes(32);
    this.ttl = opts.tokenTtlSeconds ?? 300;
    for (const [u, p] of Object.entries(opts.users ?? {})) this.users.set(u, p);
    if (opts.usersFile)
      for (const line of readFileSync(opts.usersFile, 'utf8').split('\n')) {
        const t = line.trim();
        if (!t || t.startsWith('#')) continue;
        const i = t.indexOf(':');
        if (i > 0) this.users.set(t.slice(0, i), t.slice(i + 1));
      }
    if (this.mode !== 'none' && this.users.size === 0 && !opts.anonymousPull)
      throw new Error(`auth mode ${this.mode} needs users (a users map or a users file)`);
  }

  /** Actions `user` may perform on repository `name` (registry:catalog:* is treated as repo "*"). */
  allowed(user: string | undefined, name: string): Set<Action> {
    const out = new Set<Action>();
    // whatever anonymous users may do, signed-in users may do too
    if (this.opts.anonymousPull) out.add('pull');
    if (!this.opts.grants) {
      if (user !== undefined) for (const a of ['pull', 'push', 'delete'] as const) out.add(a);
      return out;
    }
    for (const g of this.opts.grants) {
      const who = g.user === '*' ? user !== undefined : g.user === '' ? user === undefined : g.user === user;
      const where = g.repo.endsWith('*') ? name.startsWith(g.repo.slice(0, -1)) : g.repo === name;
      if (who && where) for (const a of g.actions) out.add(a);
    }
    return out;
  }

  private basicCredentials(req: IncomingMessage): { user: string; password: string } | undefined {
    const h = req.headers.authorization;
    if (!h || !/^basic /i.test(h)) return undefined;
    const dec = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    const i = dec.indexOf(':');
    return i < 0 ? { user: dec, password: '' } : { user: dec.slice(0, i), password: dec.slice(i + 1) };
  }

  private checkPassword(user: string, password: string): boolean {
    const want = this.users.get(user);
    if (want === undefined) return false;
    const a = Buffer.from(want);
    const b = Buffer.from(password);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private challenge(scopes: Scope[], error?: string): Record<string, string> {
    if (this.mode === 'basic') return { 'WWW-Authenticate': 'Basic realm="nixreg-mock"' };
    let v = `Bearer realm="${this.realm}",service="${this.service}"`;
    if (scopes.length) v += `,scope="${scopes.map(scopeString).join(' ')}"`;
    if (error) v += `,error="${error}"`;
    return { 'WWW-Authenticate': v };
  }

  private unauthorized(scopes: Scope[], msg: string, error?: string): RegistryError {
    const detail = scopes.map((s) => ({ Type: s.type, Name: s.name, Action: s.actions.join(',') }));
    return new RegistryError(401, 'UNAUTHORIZED', msg, detail.length ? detail : undefined, this.challenge(scopes, error));
  }

  /**
   * Check a registry request that needs `scopes` (empty for `/v2/`, which only needs a valid identity).
   * Throws 401 UNAUTHORIZED (with the challenge) or 403 DENIED.
   */
  authorize(req: IncomingMessage, scopes: Scope[]): AuthResult {
    if (this.mode === 'none') return { scheme: 'none' };
    if (this.mode === 'basic') {
      const c = this.basicCredentials(req);
      if (c && !this.checkPassword(c.user, c.password)) throw this.unauthorized(scopes, 'invalid username or password');
      if (!c) {
        // anonymous pulls still get the challenge on /v2/, else clients (c/image) would never send credentials
        if (scopes.length && scopes.every((s) => this.permits(undefined, s))) return { scheme: 'none' };
        throw this.unauthorized(scopes, 'authentication required');
      }
      for (const s of scopes) if (!this.permits(c.user, s)) throw new RegistryError(403, 'DENIED', `${c.user} may not ${s.actions.join(',')} ${s.name}`);
      return { user: c.user, scheme: 'basic' };
    }
    const h = req.headers.authorization;
    if (!h || !/^bearer /i.test(h)) throw this.unauthorized(scopes, 'authentication required');
    const claims = this.verifyToken(h.slice(7).trim());
    if (!claims) throw this.unauthorized(scopes, 'invalid or expired token', 'invalid_token');
    for (const s of scopes) {
      const granted = claims.access.find((a) => a.type === s.type && a.name === s.name);
      if (!s.actions.every((a) => granted?.actions.includes(a) || granted?.actions.includes('*')))
        throw this.unauthorized(scopes, `token does not grant ${scopeString(s)}`, 'insufficient_scope');
    }
    return { user: claims.sub || undefined, scheme: 'bearer' };
  }

  private permits(user: string | undefined, s: Scope): boolean {
    const allowed = this.allowed(user, s.type === 'registry' ? '*' : s.name);
    if (s.type === 'registry') return user !== undefined || allowed.has('pull');
    return s.actions.every((a) => allowed.has(a as Action));
  }

  // ---------------------------------------------------------------- token endpoint
  /**
   * GET /token?service=&scope=...&scope=... (Basic credentials optional), or POST with an OAuth2 password grant
   * form. Returns the JSON body to send; requested actions are cut down to what the user is allowed.
   */
  issueToken(req: IncomingMessage, query: URLSearchParams, form?: URLSearchParams): Record<string, unknown> {
    if (this.mode !== 'bearer') throw new RegistryError(404, 'UNSUPPORTED', 'this registry does not use token auth');
    let user: string | undefined;
    let scopes = query.getAll('scope').flatMap((s) => s.split(' '));
    if (form) {
      if (form.get('grant_type') !== 'password') throw new RegistryError(400, 'UNSUPPORTED', 'only grant_type=password is supported');
      const u = form.get('username') ?? '';
      if (!this.checkPassword(u, form.get('password') ?? '')) throw new RegistryError(401, 'UNAUTHORIZED', 'invalid username or password');
      user = u;
      scopes = (form.get('scope') ?? '').split(' ');
    } else {
      const c = this.basicCredentials(req);
      if (c) {
        if (!this.checkPassword(c.user, c.password))
          throw new RegistryError(401, 'UNAUTHORIZED', 'invalid username or password', undefined, {
            'WWW-Authenticate': 'Basic realm="nixreg-mock-token"',
          });
        user = c.user;
      } else if (!this.opts.anonymousPull) {
        throw new RegistryError(401, 'UNAUTHORIZED', 'credentials required', undefined, {
          'WWW-Authenticate': 'Basic realm="nixreg-mock-token"',
        });
      }
    }
    const access: Scope[] = [];
    for (const raw of scopes.filter(Boolean)) {
      const first = raw.indexOf(':');
      const last = raw.lastIndexOf(':');
      if (first < 0 || last === first) continue;
      const type = raw.slice(0, first).replace(/\(.*\)$/, '');
      const name = raw.slice(first + 1, last);
      const want = raw.slice(last + 1).split(',');
      if (type === 'repository') {
        const ok = this.allowed(user, name);
        const got = want.filter((a) => ok.has(a as Action));
        if (got.length) access.push({ type: 'repository', name, actions: got });
      } else if (type === 'registry' && name === 'catalog' && (user !== undefined || this.opts.anonymousPull)) {
        access.push({ type: 'registry', name, actions: ['*'] });
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const claims: TokenClaims = { iss: 'nixreg-mock', sub: user ?? '', aud: this.service, iat: now, exp: now + this.ttl, access };
    const token = this.sign(claims);
    return { token, access_token: token, expires_in: this.ttl, issued_at: new Date(now * 1000).toISOString() };
  }

  private sign(c: TokenClaims): string {
    const payload = b64url(JSON.stringify(c));
    return `${payload}.${createHmac('sha256', this.secret).update(payload).digest('base64url')}`;
  }

  private verifyToken(token: string): TokenClaims | undefined {
    const [payload, sig] = token.split('.');
    if (!payload || !sig) return undefined;
    const want = createHmac('sha256', this.secret).update(payload).digest();
    const got = Buffer.from(sig, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    const c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    if (c.exp < Date.now() / 1000 || c.aud !== this.service) return undefined;
    return c;
  }
}
