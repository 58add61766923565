// Shared by the bench scripts: a free loopback port, a throwaway docker-registry (distribution), and measuring a
// command's wall time and peak RSS. Benchmarks never run inside npm test.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';

export const MiB = 1 << 20;

export function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

/** Run a command, returning wall seconds, peak RSS in MiB (GNU time -v, else polling /proc VmHWM) and stdout. */
export async function measure(cmd, args, env = process.env) {
  const t0 = process.hrtime.bigint();
  if (existsSync('/usr/bin/time')) {
    const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { env, encoding: 'utf8', maxBuffer: 64 * MiB });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}, signal ${r.signal}): ${r.error ?? ''} ${r.stderr.slice(-3000)}`);
    if (process.env.BENCH_VERBOSE) console.error(r.stderr.split('\n').filter((l) => !/^\t/.test(l)).join('\n'));
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
    return { secs, rssMiB: kb / 1024, stdout: r.stdout };
  }
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  let hwm = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) hwm = Math.max(hwm, Number(m[1]));
    } catch {}
  }, 20);
  const [code] = await once(child, 'exit');
  clearInterval(poll);
  if (code !== 0) throw new Error(`${cmd} exited ${code}`);
  return { secs: Number(process.hrtime.bigint() - t0) / 1e9, rssMiB: hwm / 1024, stdout };
}

/** Debian's docker-registry on 127.0.0.1 with storage under `dir`; resolves once /v2/ answers. */
export async function startRegistry(dir) {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: bench\n`,
  );
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (await fetch(`${url}/v2/`).then(() => true, () => false)) break;
    if (i > 200) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host: `127.0.0.1:${port}`, port, url, stop: async () => (child.kill('SIGTERM'), await once(child, 'exit').catch(() => {})) };
}
