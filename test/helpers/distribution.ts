import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './tools.js';

/**
 * Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a throwaway storage directory.
 * Options: Basic auth via htpasswd users, bearer token auth (caller provides realm/service/issuer and the
 * certificate that signs its tokens), TLS with a given cert/key.
 */
export interface DistributionOptions {
  htpasswd?: Record<string, string>; // user -> password
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  tls?: { certFile: string; keyFile: string };
  /** storage.delete.enabled (default true); false makes manifest DELETE answer 405 UNSUPPORTED */
  deleteEnabled?: boolean;
}

export interface Distribution {
  host: string; // 127.0.0.1:PORT
  url: string; // http(s)://127.0.0.1:PORT
  dir: string;
  logFile: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * freePort() closes its probe before docker-registry binds, so another test process can take the port in between
 * (seen on 2-core CI: "bind: address already in use"): start again on a new port a few times before failing.
 */
export async function startDistribution(opts: DistributionOptions = {}): Promise<Distribution> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 5) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(opts: DistributionOptions): Promise<Distribution> {
  requireTool('docker-registry');
  const dir = mkdtempSync(join(tmpdir(), 'nixreg-distribution-'));
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dir}/data`,
    '  delete:',
    `    enabled: ${opts.deleteEnabled ?? true}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: nixreg-test-secret',
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.certFile}`, `    key: ${opts.tls.keyFile}`);
  if (opts.htpasswd) {
    requireTool('htpasswd');
    const file = join(dir, 'htpasswd');
    writeFileSync(file, '');
    for (const [u, p] of Object.entries(opts.htpasswd)) execFileSync('htpasswd', ['-bB', file, u, p], { stdio: 'ignore' });
    lines.push('auth:', '  htpasswd:', '    realm: nixreg-test', `    path: ${file}`);
  } else if (opts.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${opts.token.realm}`,
      `    service: ${opts.token.service}`,
      `    issuer: ${opts.token.issuer}`,
      `    rootcertbundle: ${opts.token.rootCertBundle}`,
    );
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, lines.join('\n') + '\n');
  const logFile = join(dir, 'registry.log');
  const { openSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      if (/address already in use/.test(readFileSync(logFile, 'utf8'))) {
        rmSync(dir, { recursive: true, force: true });
        throw new PortTaken(`port ${port} was taken`);
      }
      throw new Error(`docker-registry exited early; see ${logFile}`);
    }
    // Probe by connecting, never by binding: a probe that binds the port could itself take it from the registry.
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    // a connection only counts once the registry is known to be alive (not another process on a taken port)
    if (up && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode === null) break;
      continue;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start on ${url}; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    logFile,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
