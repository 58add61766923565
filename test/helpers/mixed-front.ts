import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import type { TestCert } from './tls.js';

/**
 * A TLS-terminating front on one 127.0.0.1 port that also answers plain HTTP (a TLS ClientHello starts with 0x16),
 * as Harbor, Artifactory and Nexus behind such a proxy do. Every request goes to the backend registry on
 * 127.0.0.1:`backendPort`; upload `Location`s come back downgraded to `http://<front>/…`, and challenges naming the
 * backend name the front's https origin. What reached the plain side is recorded in `seen`.
 */
export interface MixedFrontLog {
  plainRequests: string[];
  plainAuthorizations: string[];
  onDowngrade?: () => void;
}

export async function startMixedFront(backendPort: number, cert: TestCert, seen: MixedFrontLog): Promise<{ server: Server; host: string }> {
  let host = '';
  const backendOrigin = `http://127.0.0.1:${backendPort}`;
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const up = httpRequest(
      { host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${backendPort}` } },
      (r) => {
        const headers = { ...r.headers };
        if (typeof headers.location === 'string') {
          const loc = new URL(headers.location, backendOrigin);
          headers.location = `http://${host}${loc.pathname}${loc.search}`;
          seen.onDowngrade?.();
        }
        if (typeof headers['www-authenticate'] === 'string')
          headers['www-authenticate'] = headers['www-authenticate'].split(backendOrigin).join(`https://${host}`);
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const tlsSide = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, forward);
  const plainSide = createHttpServer((req, res) => {
    seen.plainRequests.push(`${req.method} ${req.url}`);
    if (req.headers.authorization) seen.plainAuthorizations.push(req.headers.authorization);
    forward(req, res);
  });
  const server = createNetServer((socket) => {
    socket.once('data', (first) => {
      socket.pause();
      socket.unshift(first);
      (first[0] === 0x16 ? tlsSide : plainSide).emit('connection', socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, host };
}
