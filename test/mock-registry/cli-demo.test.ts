import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { sampleImage } from '../../mock-registry/sample-image.js';
import { req } from './http.js';

// These run the compiled files (dist/), like `npm run registry` / `npm run demo`; `npm test` builds first.
const CLI = 'dist/mock-registry/cli.js';
const DEMO = 'dist/mock-registry/demo.js';

describe('npm run registry (mock-registry/cli.ts)', () => {
  it('--help lists the options', () => {
    const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    for (const o of ['--port', '--host', '--storage', '--auth', '--users', '--anonymous-pull', '--tls-cert', '--tls-key', '--fault', '--seed'])
      expect(r.stdout).toContain(o);
  });

  it('starts in the foreground on 127.0.0.1, prints "listening on", serves, and applies --fault', async () => {
    const child = spawn(process.execPath, [CLI, '--port', '0', '--quiet', '--fault', 'kind=status,status=429,route=ping,times=1,retryAfter=3'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (c) => reject(new Error(`exited ${c}`)));
      });
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      expect(m).not.toBeNull();
      const first = await req('GET', `${m![1]}/v2/`);
      expect([first.status, first.header('retry-after')]).toEqual([429, '3']);
      expect((await req('GET', `${m![1]}/v2/`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('rejects a bad --fault with one line and exit 1', () => {
    const r = spawnSync(process.execPath, [CLI, '--port', '0', '--fault', 'kind=explode'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^mock-registry: fault "kind=explode": unknown kind "explode"/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('npm run demo (mock-registry/demo.ts)', () => {
  it('pushes the sample image, pulls it with the real CLI and prints a pullImage block', () => {
    const r = spawnSync(process.execPath, [DEMO], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr.split('\n').filter((l) => l.startsWith('demo:'))).toEqual([]);
    expect(r.status).toBe(0);
    const img = sampleImage();
    expect(r.stdout).toMatch(/dockerTools\.pullImage \{\n\s+imageName = "127\.0\.0\.1:\d+\/demo\/hello";/);
    expect(r.stdout).toContain(`imageDigest = "${img.manifestDigest}";`);
    expect(r.stdout).toMatch(/hash = "sha256-[A-Za-z0-9+/]{43}=";/);
  });
});
