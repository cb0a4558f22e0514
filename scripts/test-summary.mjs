#!/usr/bin/env node
// Sums every package's vitest JSON report into one plain closing line,
// "N passed, N failed", so CI reads a total across the workspace.
// `--clean` removes old reports first (run before the tests).
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = ['packages', 'examples', '.']
  .flatMap((group) => (group === '.' ? ['bench', 'e2e', 'browser', 'e2e-browser'] : readdirSync(join(root, group)).map((d) => join(group, d))))
  .map((d) => join(root, d, 'test-results', 'vitest.json'));

if (process.argv.includes('--clean')) {
  for (const f of dirs) rmSync(f, { force: true });
  process.exit(0);
}

let passed = 0;
let failed = 0;
let skipped = 0;
let files = 0;
for (const f of dirs) {
  if (!existsSync(f)) continue;
  const r = JSON.parse(readFileSync(f, 'utf8'));
  files++;
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
if (files === 0) {
  console.error('no test reports found');
  process.exit(1);
}
console.log(`test reports: ${files} packages`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
