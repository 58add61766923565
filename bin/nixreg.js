#!/usr/bin/env node
// Thin launcher: the CLI is compiled ahead of time (npm run build: tsc, then scripts/bundle.mjs) so start-up never
// compiles TypeScript. The bundle (dist/bundle, one pre-linked file per command) starts faster than tsc's ~200
// modules; it is used only while it is at least as new as tsc's output, so a later plain `tsc` run wins.
import { readFileSync, statSync } from 'node:fs';

const at = (rel) => new URL(rel, import.meta.url);
const mtime = (rel) => statSync(at(rel), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundled = mtime('../dist/bundle/main.js') >= mtime('../dist/src/cli/main.js');
const argv = process.argv.slice(2);

// `nixreg --help` and `nixreg COMMAND --help`: the text the bundle's yargs rendered at build time, for the two
// widths main.ts can pick without a narrower terminal (not a terminal: 100; 110+ columns: 110). The bundled yargs
// prints English whatever the locale (its translations are files it cannot find inside the bundle), so the text is
// the same. Saves loading yargs and the command's module (70-250 ms). Anything else, or a name without rendered
// text, goes to yargs.
const isHelp = (a) => a === '--help' || a === '-h';
const helpFile =
  argv.length === 1 && isHelp(argv[0])
    ? 'help-WIDTH.txt'
    : argv.length === 2 && isHelp(argv[1]) && /^[a-z][a-z-]*$/.test(argv[0])
      ? `help/${argv[0]}-WIDTH.txt`
      : '';
let help = '';
if (bundled && helpFile) {
  const cols = process.stdout.columns;
  const width = !cols ? 100 : cols >= 110 ? 110 : 0;
  try {
    if (width) help = readFileSync(at(`../dist/bundle/${helpFile.replace('WIDTH', String(width))}`), 'utf8');
  } catch {}
}
if (help) process.stdout.write(help);
else {
  const { main } = await import(bundled ? '../dist/bundle/main.js' : '../dist/src/cli/main.js');
  main(argv);
}
