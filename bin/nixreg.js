#!/usr/bin/env node
// Thin launcher: the CLI is compiled ahead of time (npm run build: tsc, then scripts/bundle.mjs) so start-up never
// compiles TypeScript. The bundle (dist/bundle, one pre-linked file per command) starts faster than tsc's ~200
// modules; it is used only while it is at least as new as tsc's output, so a later plain `tsc` run wins.
import { readFileSync, statSync } from 'node:fs';

const at = (rel) => new URL(rel, import.meta.url);
const mtime = (rel) => statSync(at(rel), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundled = mtime('../dist/bundle/main.js') >= mtime('../dist/src/cli/main.js');
const argv = process.argv.slice(2);

// `nixreg --help`: the text the bundle's yargs rendered at build time, for the two widths main.ts can pick
// without a narrower terminal (not a terminal: 100; 110+ columns: 110). Saves loading yargs (~70 ms).
let help = '';
if (bundled && argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
  const cols = process.stdout.columns;
  const width = !cols ? 100 : cols >= 110 ? 110 : 0;
  try {
    if (width) help = readFileSync(at(`../dist/bundle/help-${width}.txt`), 'utf8');
  } catch {}
}
if (help) process.stdout.write(help);
else {
  const { main } = await import(bundled ? '../dist/bundle/main.js' : '../dist/src/cli/main.js');
  main(argv);
}
