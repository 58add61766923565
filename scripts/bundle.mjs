#!/usr/bin/env node
// Second build step (after tsc): bundle the compiled CLI and its npm dependencies into a few ES modules under
// dist/bundle/ (one chunk per command, loaded on demand). WHY: Node 20 resolves and compiles each of yargs' and
// undici's ~150 files separately at start-up; one pre-linked file cuts `nixreg --help` and the fixed cost of every
// command. bin/nixreg.js uses the bundle only while it is newer than tsc's output, so a plain `tsc` rebuild is
// never shadowed by a stale bundle.
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

// `nixreg --help` and every `nixreg COMMAND --help` are served from text rendered here by the same bundle (yargs
// and a command's module cost 70-250 ms of start-up; the text depends on nothing but the width).
// main.ts wraps help at min(110, terminal columns), 100 when not a terminal: both fixed widths are kept; any other
// terminal width falls back to yargs (bin/nixreg.js). The bundled yargs prints English in every locale (its
// translation files are not in the bundle); rendered two processes at a time.
const { commands } = await import(pathToFileURL(join(root, 'dist/src/cli/commands/index.js')).href);
const render = (args, width) =>
  new Promise((resolveRender, reject) => {
    const setColumns = width === 100 ? '' : `Object.defineProperty(process.stdout, 'columns', { value: ${width} });`;
    const script = `${setColumns} const { main } = await import(${JSON.stringify(pathToFileURL(join(outdir, 'main.js')).href)}); await main(${JSON.stringify(args)});`;
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err || !stdout.includes('Options:')) reject(new Error(`rendering nixreg ${args.join(' ')} at width ${width} failed: ${stderr || err}`));
      else resolveRender(stdout);
    });
  });
const jobs = [];
for (const width of [100, 110]) {
  jobs.push({ args: ['--help'], file: join(outdir, `help-${width}.txt`), width });
  for (const c of commands) jobs.push({ args: [c.name, '--help'], file: join(outdir, 'help', `${c.name}-${width}.txt`), width });
}
mkdirSync(join(outdir, 'help'), { recursive: true });
const worker = async () => {
  for (let job = jobs.shift(); job; job = jobs.shift()) writeFileSync(job.file, await render(job.args, job.width));
};
await Promise.all([worker(), worker()]);
