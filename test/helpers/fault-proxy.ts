import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An HTTP proxy on 127.0.0.1 in front of a real registry (distribution), for faults only the network can
 * produce: `drop-answer` lets the upstream handle the request completely, then resets the client's connection
 * instead of relaying the answer (the registry's state changed, the client never hears of it); `reset-mid-body`
 * forwards the first half of the request body (by Content-Length) and then resets both connections, so the
 * registry sees a body cut short and the client a reset; `refuse` reads the whole request, forwards nothing and
 * answers `status` (429 or a 5xx, with `Retry-After: retryAfter` when given), as a load balancer or a registry
 * shedding load does. Rules match by method and path; `skip` lets the first N matches through, `times` bounds how
 * often a rule fires.
 */
export interface ProxyRule {
  kind: 'drop-answer' | 'reset-mid-body' | 'refuse';
  method: string;
  path: RegExp;
  skip?: number;
  times?: number;
  /** `refuse`: the answer's status (default 503). */
  status?: number;
  /** `refuse`: the Retry-After header's value (seconds or an HTTP date). */
  retryAfter?: string;
}

export interface FaultProxy {
  host: string;
  url: string;
  /** how many times each rule fired, in rule order */
  fired: number[];
  /** how many requests each rule matched (fired or not), in rule order */
  matched: number[];
  close(): Promise<void>;
}

export async function startFaultProxy(upstreamUrl: string, rules: ProxyRule[]): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const matched = rules.map(() => 0);
  const fired = rules.map(() => 0);
  const sockets = new Set<Socket>();
  const pick = (method: string, path: string): ProxyRule | undefined => {
    let hit: ProxyRule | undefined;
    rules.forEach((r, i) => {
      if (r.method !== method || !r.path.test(path)) return;
      matched[i]!++;
      if (matched[i]! <= (r.skip ?? 0) || (r.times !== undefined && fired[i]! >= r.times)) return;
      fired[i]!++;
      hit ??= r;
    });
    return hit;
  };
  const server: Server = createServer((req, res) => {
    const rule = pick(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x').pathname);
    const fault = rule?.kind;
    if (rule?.kind === 'refuse') {
      const status = rule.status ?? 503;
      const body = JSON.stringify({ errors: [{ code: status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: `proxy answered ${status}` }] });
      req.resume();
      req.on('end', () => {
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(rule.retryAfter !== undefined ? { 'retry-after': rule.retryAfter } : {}),
        });
        res.end(body);
      });
      return;
    }
    const drop = fault === 'drop-answer';
    const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (ures: IncomingMessage) => {
      if (drop) {
        ures.resume();
        ures.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => req.socket.destroy());
    if (fault === 'reset-mid-body') {
      const half = Math.floor(Number(req.headers['content-length'] ?? 0) / 2);
      let sent = 0;
      req.on('data', (c: Buffer) => {
        if (sent >= half) return;
        const part = c.subarray(0, half - sent);
        sent += part.length;
        up.write(part);
        if (sent >= half) {
          up.destroy();
          req.socket.destroy();
        }
      });
      req.on('end', () => {
        up.destroy();
        req.socket.destroy();
      });
      return;
    }
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: `http://${host}`,
    fired,
    matched,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
