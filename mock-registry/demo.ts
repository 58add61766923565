#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { extract } from 'tar-stream';
import { toSRI } from '../src/digest/nixhash.js';
import { pushSampleImage, sampleImage } from './sample-image.js';
import { startRegistry } from './server.js';

/**
 * `npm run demo`: the whole user story on one machine, no network beyond loopback.
 *  1. start the mock registry on an ephemeral 127.0.0.1 port;
 *  2. push a tiny deterministic image to it over plain HTTP;
 *  3. run the real CLI: `nixreg pull 127.0.0.1:P/demo/hello --digest ... -o <tmp>/hello.tar`;
 *  4. print the dockerTools.pullImage block a user would paste into Nix (hash over the pulled file).
 * Any failure (including the pull) ends the demo with a non-zero exit and one line saying why.
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist/mock-registry → repo
const bin = join(repoRoot, 'bin', 'nixreg.js');
const say = (s: string) => process.stdout.write(s + '\n');

function runPull(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      process.stderr.write(c);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code: code ?? (signal ? 128 : 1), stderr });
    });
  });
}

async function sha256File(path: string): Promise<Buffer> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest();
}

/** The archive's entry names (a light check that the pull produced a docker-archive, not something else). */
async function tarEntries(path: string): Promise<string[]> {
  const names: string[] = [];
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(path), ex);
  return names;
}

async function main(): Promise<number> {
  if (!existsSync(bin)) throw new Error(`${bin} not found; run from a built checkout (npm run build)`);
  const reg = await startRegistry({ onRequest: undefined });
  const tmp = mkdtempSync(join(tmpdir(), 'nixreg-demo-'));
  try {
    say(`mock registry listening on ${reg.url}`);
    const img = sampleImage();
    const imageName = `${reg.host}/demo/hello`;
    const digest = await pushSampleImage(reg.url, 'demo/hello', 'latest', img);
    if (digest !== img.manifestDigest) throw new Error(`registry reported ${digest}, expected ${img.manifestDigest}`);
    say(`pushed ${imageName}:latest  (${img.layer.length + img.config.length + img.manifest.length} bytes, manifest ${digest})`);

    const out = join(tmp, 'hello.tar');
    const args = ['pull', imageName, '--digest', digest, '-o', out, '--tls-verify=false'];
    say(`\n$ nixreg ${args.map((a) => (a === out ? '<tmp>/hello.tar' : a)).join(' ')}`);
    const pull = await runPull(args);
    if (pull.code !== 0) {
      const line = pull.stderr.trim().split('\n').pop() || '(no message)';
      process.stderr.write(`demo: nixreg pull failed (exit ${pull.code}): ${line}\n`);
      return pull.code;
    }
    if (!existsSync(out)) throw new Error('nixreg pull exited 0 but wrote no file');
    const entries = await tarEntries(out);
    if (!entries.includes('manifest.json')) throw new Error(`pulled file is not a docker-archive (entries: ${entries.slice(0, 5).join(', ')})`);
    const hash = toSRI(await sha256File(out));
    say(`pulled ${entries.length} archive entries into <tmp>/hello.tar\n`);
    say('Paste into your Nix expression:\n');
    say('  dockerTools.pullImage {');
    say(`    imageName = "${imageName}";`);
    say(`    imageDigest = "${digest}";`);
    say(`    hash = "${hash}";`);
    say('    tlsVerify = false; # the demo registry speaks plain HTTP');
    say('  }');
    const c = reg.counters;
    say(
      `\nregistry saw ${c.requests} requests: ${Object.entries(c.byRoute)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}`,
    );
    return 0;
  } finally {
    await reg.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo: ${err.message.split('\n')[0]}\n`);
    process.exit(1);
  },
);
