#!/usr/bin/env node
// Thin launcher: the CLI is compiled ahead of time (npm run build) so start-up never compiles TypeScript.
import { main } from '../dist/src/cli/main.js';
main(process.argv.slice(2));
