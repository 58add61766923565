#!/usr/bin/env node
// `npm test`: the project's single test command. Installs the system tools the suites need (on Debian as root),
// compiles and bundles the CLI once (the CLI tests run the real bin/nixreg.js), runs vitest, and ends with one line
// `N passed, M failed` taken from vitest's own JSON report.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

if (run('bash', ['scripts/ensure-system-deps.sh']) !== 0) process.exit(1);
run('node', ['scripts/build-native.mjs']); // optional: never fails (see the script)
if (run('npx', ['tsc', '-p', 'tsconfig.json']) !== 0 || run('node', ['scripts/bundle.mjs']) !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
// The layer order of the imports (scripts/check-imports.mjs): a violation counts as one failed test.
const importsFailed = run('node', ['scripts/check-imports.mjs']) === 0 ? 0 : 1;
// Formatting and lint (`npm run lint`: Biome, biome.jsonc): a finding counts as one failed test.
const lintFailed = run('npx', ['biome', 'ci', '--reporter=summary', '.']) === 0 ? 0 : 1;
const report = '.vitest-results.json';
rmSync(report, { force: true });
const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]);
let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  // Nothing is skipped on purpose here, so a skipped or todo test is a failure too: that is what vitest reports
  // for the tests of a suite whose beforeAll failed (e.g. a server that did not start).
  failed = r.numFailedTests + (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  // a suite that failed to load counts as a failure even though it reported no tests
  for (const s of r.testResults ?? []) if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) failed++;
} catch {
  failed = Math.max(failed, 1);
}
failed += importsFailed + lintFailed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(status === 0 && failed === 0 ? 0 : 1);
