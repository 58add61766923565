#!/usr/bin/env node
// Second build step (after tsc): bundle the compiled CLI and its npm dependencies into a few ES modules under
// dist/bundle/ (one chunk per command, loaded on demand). WHY: Node 20 resolves and compiles each of yargs' and
// undici's ~150 files separately at start-up; one pre-linked file cuts `nixreg --help` and the fixed cost of every
// command. bin/nixreg.js uses the bundle only while it is newer than tsc's output, so a plain `tsc` rebuild is
// never shadowed by a stale bundle.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// string-width builds an Intl.Segmenter and Unicode-property regular expressions (\p{RGI_Emoji} among them) when it
// is loaded: ~10 ms of every command's start-up (node --cpu-prof), although its ASCII fast path never uses them.
// Each such module-level constant becomes a value built on first use. A version that no longer has them is
// bundled unchanged (with a warning).
const LAZY_NAMES = ['segmenter', 'visibleCharacterRegex', 'spacingMarkRegex', 'rgiEmojiRegex', 'extendedPictographicRegex'];
const lazyStringWidthGlobals = {
  name: 'lazy-string-width-globals',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]string-width[\\/]index\.js$/ }, ({ path }) => {
      let text = readFileSync(path, 'utf8');
      for (const name of LAZY_NAMES) {
        const decl = new RegExp(`^const ${name} = (.+);$`, 'm');
        const m = decl.exec(text);
        if (!m) {
          console.warn(`bundle: string-width has no module-level ${name}; left as is`);
          continue;
        }
        text = text.replace(decl, '').replace(new RegExp(`\\b${name}\\b`, 'g'), `${name}()`);
        text += `\nlet ${name}Value;\nfunction ${name}() { return (${name}Value ??= ${m[1]}); }\n`;
      }
      return { contents: text, loader: 'js' };
    });
  },
};
const outdir = join(root, 'dist/bundle');
// The library's types: tsc emits no .d.ts for src/types/undici-parts.d.ts (undici ships types for its index only;
// this file declares the modules src/registry/undici.ts imports one by one), so copy it and reference it from the
// package's entry declarations, for consumers that type-check without skipLibCheck.
mkdirSync(join(root, 'dist/src/types'), { recursive: true });
// (as .d.cts: in this "type": "module" package a .d.ts is ESM, where the `export =` of CommonJS is an error)
copyFileSync(join(root, 'src/types/undici-parts.d.ts'), join(root, 'dist/src/types/undici-parts.d.cts'));
const indexTypes = join(root, 'dist/src/index.d.ts');
const reference = '/// <reference path="./types/undici-parts.d.cts" />\n';
const typesText = readFileSync(indexTypes, 'utf8');
if (!typesText.startsWith(reference)) writeFileSync(indexTypes, reference + typesText);
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [join(root, 'dist/src/cli/main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  absWorkingDir: root,
  // cliui (yargs' help layout) pins string-width 7, which runs Intl.Segmenter over every character; yargs renders
  // the whole help text on every command run (cacheHelpMessage), ~150 ms here. string-width 8 (already a yargs
  // dependency, same API) has an ASCII fast path.
  alias: { 'string-width': './node_modules/string-width/index.js' },
  plugins: [lazyStringWidthGlobals],
  // CommonJS dependencies (undici, tar-stream) call require() for Node built-ins, which ESM output lacks.
  banner: { js: "import { createRequire as __nixregRequire } from 'node:module'; const require = __nixregRequire(import.meta.url);" },
});

// `nixreg --help`, the one command that needs no module at all, is served from text rendered here by the same
// bundle (yargs alone costs ~70 ms of start-up). main.ts wraps help at min(110, terminal columns), 100 when not a
// terminal: both fixed widths are kept; any other terminal width falls back to yargs.
for (const width of [100, 110]) {
  const setColumns = width === 100 ? '' : `Object.defineProperty(process.stdout, 'columns', { value: ${width} });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `${setColumns} const { main } = await import(${JSON.stringify(join(outdir, 'main.js'))}); await main(['--help']);`], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.includes('Commands:')) throw new Error(`rendering --help failed: ${r.stderr}`);
  writeFileSync(join(outdir, `help-${width}.txt`), r.stdout);
}
