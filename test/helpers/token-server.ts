import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { makeSelfSignedCert, type TestCert } from './tls.js';

/**
 * A minimal Docker token server (the "token" auth of distribution) on 127.0.0.1: issues RS256 JWTs with an
 * `x5c` header holding its self-signed certificate, which distribution trusts via `rootcertbundle`.
 */
export interface TokenServerOptions {
  /** user → password; requests with wrong Basic credentials get 401. */
  users?: Record<string, string>;
  /** Actions ever granted (default pull and push). ['pull'] makes every push fail with insufficient scope. */
  allowedActions?: string[];
  /** Anonymous requests get tokens (default true); with false they get 401. */
  anonymous?: boolean;
  /** refresh token → user, for identity-token (POST grant_type=refresh_token) requests. */
  refreshTokens?: Record<string, string>;
  /** Artificial delay before answering (to observe concurrent fetches). */
  delayMs?: number;
}

export interface TokenRequestLog {
  account?: string;
  scopes: string[];
  service?: string;
  authorized: boolean;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
  cert: TestCert;
  requests: TokenRequestLog[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const cert = makeSelfSignedCert('nixreg-test-token-issuer');
  const key = createPrivateKey(cert.keyPem);
  const service = 'nixreg-test-registry';
  const issuer = 'nixreg-test-issuer';
  const allowed = opts.allowedActions ?? ['pull', 'push'];
  const requests: TokenRequestLog[] = [];

  const handle = async (req: IncomingMessage): Promise<{ status: number; body: unknown }> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization;
    let user: string | undefined;
    if (req.method === 'POST') {
      // OAuth2 refresh-token grant (identity tokens): parameters in a form body.
      let text = '';
      for await (const c of req) text += c;
      const form = new URLSearchParams(text);
      for (const [k, v] of form) url.searchParams.append(k, v);
      const rt = form.get('refresh_token') ?? '';
      if (form.get('grant_type') !== 'refresh_token' || !opts.refreshTokens?.[rt])
        return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'bad refresh token' }] } };
      user = opts.refreshTokens[rt];
      url.searchParams.set('account', `${user} (refresh ${form.get('client_id')})`);
    }
    const scopes = url.searchParams.getAll('scope');
    if (user) {
      /* authenticated by refresh token */
    } else if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (!opts.users || opts.users[u!] !== p.join(':')) return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] } };
      user = u;
    } else if (opts.anonymous === false) return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'login required' }] } };
    requests.push({
      ...(url.searchParams.get('account') ? { account: url.searchParams.get('account')! } : {}),
      scopes,
      ...(url.searchParams.get('service') ? { service: url.searchParams.get('service')! } : {}),
      authorized: !!user,
    });
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    const access = scopes
      .flatMap((s) => s.split(' '))
      .map((s) => {
        const [type, ...rest] = s.split(':');
        const actions = rest
          .pop()!
          .split(',')
          .filter((a) => allowed.includes(a));
        return { type, name: rest.join(':'), actions };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [cert.certDerBase64] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign('sha256', Buffer.from(signingInput), key))}`;
    return { status: 200, body: { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() } };
  };

  const server: Server = createServer((req, res) => {
    handle(req).then(
      ({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: cert.certFile,
    cert,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
