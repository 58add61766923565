#!/usr/bin/env node
// Builds the optional native layer decoders (src/native/codecs.c → dist/native/codecs.node) over the system's
// libzstd and ISA-L, and the deflate encoder over a static zlib (Debian: libzstd-dev, libisal-dev, zlib1g-dev;
// installed by scripts/ensure-system-deps.sh). An N-API addon
// is a plain shared object compiled against Node's own headers (include/node next to the running node, as
// node-gyp's --nodedir uses them), so no download and no node-gyp run is needed. Whatever is missing (a compiler,
// Node's headers, both libraries) leaves no addon and one line on stderr: nixreg then decodes with fzstd and
// node:zlib, byte for byte the same output. Never fails the build. NIXREG_NO_NATIVE=1 skips it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src/native/codecs.c');
const outDir = join(root, 'dist/native');
const out = join(outDir, 'codecs.node');
const say = (line) => console.error(`build-native: ${line}`);

function main() {
  rmSync(out, { force: true });
  if (process.env.NIXREG_NO_NATIVE === '1') return say('NIXREG_NO_NATIVE=1: not built (fzstd and node:zlib decode)');
  const cc = process.env.CC || 'cc';
  const nodeDirs = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..'), '/usr'].filter(Boolean);
  const include = nodeDirs.map((d) => join(d, 'include/node')).find((d) => existsSync(join(d, 'node_api.h')));
  if (!include) return say(`Node's headers (include/node/node_api.h) not found next to ${process.execPath}: not built`);
  const has = (header) =>
    spawnSync(cc, ['-E', '-x', 'c', '-', '-o', '/dev/stdout'], { input: `#include <${header}>\n`, stdio: ['pipe', 'ignore', 'ignore'] }).status === 0;
  if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) return say(`no C compiler (${cc}): not built`);
  const defs = [];
  const libs = [];
  if (has('zstd.h')) defs.push('-DHAVE_ZSTD'), libs.push('-lzstd');
  if (has('isa-l/igzip_lib.h')) defs.push('-DHAVE_ISAL'), libs.push('-lisal');
  // zlib only as a static archive with its symbols kept local (see codecs.c); `-print-file-name` answers the bare
  // name when the archive is not on the linker's path
  const libzA = spawnSync(cc, ['-print-file-name=libz.a'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  if (has('zlib.h') && libzA.startsWith('/') && existsSync(libzA)) defs.push('-DHAVE_ZLIB'), libs.push(libzA, '-Wl,--exclude-libs,ALL');
  if (!defs.length) return say('none of the libzstd, ISA-L and zlib headers found (libzstd-dev, libisal-dev, zlib1g-dev): not built');
  mkdirSync(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const args = [
    '-O2',
    '-fPIC',
    '-shared',
    '-Wall',
    '-Wextra',
    '-Wno-unused-parameter',
    '-DNODE_GYP_MODULE_NAME=codecs',
    ...defs,
    '-I',
    include,
    source,
    '-o',
    tmp,
    ...libs,
  ];
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    return say(`compiling failed, not built: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(0, 3).join(' | ')}`);
  }
  renameSync(tmp, out);
  const names = { '-DHAVE_ZSTD': 'zstd', '-DHAVE_ISAL': 'gzip', '-DHAVE_ZLIB': 'deflate' };
  say(`built dist/native/codecs.node (${defs.map((d) => names[d]).join(', ')})`);
}

main();
