// Peak RSS (VmHWM) of the bundled CLI exporting a gzip'd docker-archive whose one layer holds N empty files in
// N/1000 directories. Usage: node bench/export-cli-memory.mjs N [node flags...]   (after `npm run build`)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodePythonPaxHeader, endOfArchive } from '../dist/src/tar/python-pax.js';

const n = Number(process.argv[2] ?? 100000);
const nodeFlags = process.argv.slice(3);
const hdr = (name, type, size = 0) => encodePythonPaxHeader({ name, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1, size });
const parts = [];
for (let i = 0; i < n; i++) {
  const dir = `usr/share/d${Math.floor(i / 1000)}`;
  if (i % 1000 === 0) parts.push(hdr(dir, 'dir'));
  parts.push(hdr(`${dir}/f${i}`, 'file'));
}
let layer = Buffer.concat(parts);
layer = Buffer.concat([layer, endOfArchive(layer.length)]);
const diffID = 'sha256:' + createHash('sha256').update(layer).digest('hex');
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } }));
const manifest = Buffer.from(JSON.stringify([{ Config: 'config.json', RepoTags: ['big:1'], Layers: ['layer.tar'] }]));
const pad = (k) => Buffer.alloc((512 - (k % 512)) % 512);
const member = (name, b) => [hdr(name, 'file', b.length), b, pad(b.length)];
let outer = Buffer.concat([...member('manifest.json', manifest), ...member('config.json', config), ...member('layer.tar', layer)]);
outer = Buffer.concat([outer, endOfArchive(outer.length)]);
const dir = mkdtempSync(join(tmpdir(), 'nixreg-bench-export-'));
const archive = join(dir, 'big.tar.gz');
writeFileSync(archive, gzipSync(outer, { level: 1 }));
layer = outer = undefined;
const preload = join(dir, 'hwm.mjs');
writeFileSync(
  preload,
  `import { readFileSync, writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(join(dir, 'hwm'))}, /VmHWM:\\s*(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]));\n`,
);
const t0 = process.hrtime.bigint();
const r = spawnSync(
  process.execPath,
  [...nodeFlags, '--import', `file://${preload}`, new URL('../bin/nixreg.js', import.meta.url).pathname, 'export', archive, '-o', '-'],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const peakKiB = Number(readFileSync(join(dir, 'hwm'), 'utf8'));
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ entries: n, status: r.status, seconds: Math.round(seconds * 10) / 10, peakRssMiB: Math.round(peakKiB / 1024) }));
