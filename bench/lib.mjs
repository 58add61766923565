// Shared by the benchmark harness: a free loopback port, a throwaway docker-registry (distribution), and measuring
// a command's wall time, CPU time (user+sys of it and its children) and peak RSS with GNU time.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * Runs `cmd args` under /usr/bin/time. Returns { wall, cpu, rssMiB, stdout }: wall seconds measured here, CPU =
 * user+sys of the command and every child it waited for, peak RSS = the largest single process (GNU time's %M,
 * so a shell pipeline reports its biggest member, not the sum). Throws with the stderr tail on failure.
 */
export function measure(cmd, args, { env = process.env, timeFile } = {}) {
  const tf = timeFile ?? join(process.env.TMPDIR ?? '/tmp', `nixreg-bench-time-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', '-o', tf, cmd, ...args], { env, encoding: 'utf8', maxBuffer: 64 * MiB });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}, signal ${r.signal}): ${r.error ?? ''}${(r.stderr ?? '').slice(-3000)}`);
  const [user, sys, kb] = readFileSync(tf, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  rmSync(tf, { force: true });
  return { wall, cpu: user + sys, rssMiB: kb / 1024, stdout: r.stdout };
}

/** `bash -o pipefail -c script`, measured like measure(). */
export const measureShell = (script, opts) => measure('bash', ['-o', 'pipefail', '-c', script], opts);

/** median, min and max of a list of numbers */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0], max: s[s.length - 1] };
}

/** Debian's docker-registry on 127.0.0.1 with storage under `dir`; resolves once /v2/ answers. */
/**
 * Debian's docker-registry on a free loopback port. freePort() closes its probe before the registry binds, so
 * another process (the smoke test runs beside other suites) can take the port in between: the registry then exits
 * at once, and we start again on a new port.
 */
export async function startRegistry(dir, attempt = 1) {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: bench\n`,
  );
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const exited = once(child, 'exit').catch(() => {});
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      if (attempt >= 5) throw new Error(`docker-registry exited at start (port ${port})`);
      return startRegistry(dir, attempt + 1);
    }
    // a registry answers /v2/ with the distribution API version header; anything else on the port is not ours
    const ok = await fetch(`${url}/v2/`).then(
      (r) => r.headers.get('docker-distribution-api-version') !== null,
      () => false,
    );
    if (ok && child.exitCode === null) break;
    if (i > 200) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    url,
    /** CPU seconds (user + system) the registry process has used so far (Linux /proc) */
    cpuSeconds: () => {
      try {
        const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
      } catch {
        return Number.NaN;
      }
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Uploads one blob (monolithic POST + PUT) to a registry. */
export async function putBlob(url, repo, digest, body, length) {
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (post.status !== 202) throw new Error(`POST ${post.status}`);
  const loc = new URL(post.headers.get('location'), url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, {
    method: 'PUT',
    body,
    duplex: 'half',
    headers: { 'content-length': String(length), 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`PUT blob ${put.status} ${await put.text()}`);
}

/** The manifest digest a registry serves for repo:ref (Docker-Content-Digest of a HEAD). */
export async function manifestDigest(url, repo, ref) {
  const r = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
  });
  return r.ok ? r.headers.get('docker-content-digest') : null;
}

/** `cmp a b` */
export const sameBytes = (a, b) => spawnSync('cmp', ['-s', a, b]).status === 0;
