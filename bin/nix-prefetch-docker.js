#!/usr/bin/env node
// The name nvfetcher and npins call: `nixreg prefetch`, which takes nix-prefetch-docker's flags and positionals.
process.argv.splice(2, 0, 'prefetch');
await import('./nixreg.js');
