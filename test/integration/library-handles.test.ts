import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { layerTar, manifestOf, pushTestImage } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';

/**
 * A library caller's process must be able to exit once a call returns: the registry client's connections are closed
 * by the call, not left to keep-alive. The child imports dist/ (needs a built dist/),
 * makes the call against Debian's registry, then lists the handles still open (process.getActiveResourcesInfo)
 * and ends on its own, without process.exit.
 */
const INDEX = join(import.meta.dirname, '../../dist/src/index.js');

let reg: Distribution;
let manifestDigest: string;

beforeAll(async () => {
  reg = await startDistribution();
  const img = simpleImage([layerTar({ 'etc/hello': randomBytes(1024) })]);
  await pushTestImage(reg.url, 'lib/handles', img, '1');
  manifestDigest = manifestOf(img).digest;
}, 120_000);
afterAll(async () => {
  await reg?.stop();
});

/** Runs `body` (an async function body given `lib` and `ref`) in a child; its stdout is: result line, then the open handles as JSON, then how many more sockets its descriptors hold than before the call. */
function child(body: string): Promise<{ status: number | null; result: string; handles: string[]; sockets: number; stderr: string }> {
  const script = `
    const { readdirSync, readlinkSync } = await import('node:fs');
    const socketCount = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } }).length;
    const before = socketCount(); // stdio pipes are socket pairs too
    const lib = await import(${JSON.stringify(INDEX)});
    const ref = process.argv[1];
    const result = await (async () => { ${body} })();
    // let whatever the call closed finish closing before looking
    await new Promise((r) => setImmediate(r));
    process.stdout.write(String(result) + '\\n' + JSON.stringify(process.getActiveResourcesInfo()) + '\\n' + (socketCount() - before) + '\\n');
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script, `docker://${reg.host}/lib/handles:1`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // a process held open by a forgotten socket would never end: stop it and fail
    const guard = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('error', reject);
    p.on('close', (status) => {
      clearTimeout(guard);
      const [result = '', handles = '[]', sockets = '-1'] = out.split('\n');
      resolve({ status, result, handles: JSON.parse(handles) as string[], sockets: Number(sockets), stderr: err });
    });
  });
}

describe('library calls leave no open handle', () => {
  it('rawManifest of a docker:// reference closes its client', async () => {
    const r = await child(`
      const bytes = await lib.rawManifest(ref, { tlsVerify: false });
      return (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
    `);
    expect(r.status, r.stderr).toBe(0);
    expect(`sha256:${r.result}`).toBe(manifestDigest);
    expect(r.handles.filter((h) => h !== 'TTYWrap' && h !== 'PipeWrap')).toEqual([]);
    expect(r.sockets, 'sockets still open in the child').toBe(0);
  }, 120_000);
});
