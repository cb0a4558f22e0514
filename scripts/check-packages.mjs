#!/usr/bin/env node
// Builds every public package (packages/* without "private": true), packs it the way it
// would be published (`pnpm pack`, which turns workspace:* into versions), and checks the
// tarball with publint (--strict: warnings fail) and @arethetypeswrong/cli (the esm-only
// profile: these packages are ESM only, so CommonJS `require` and node10 resolution are
// not goals). Also checks what STYLE.md asks of every package.json: "sideEffects": false,
// explicit exports with no "./*", "@deadbolt/source" first and "types" next in every
// condition object, and a README.md in the tarball.
//
//   node scripts/check-packages.mjs [--no-build] [--json] [--verbose] [@deadbolt/name ...]
//
// Exit status 1 if any package fails. Packages are checked one after another (2 cores).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const json = args.includes('--json');
const build = !args.includes('--no-build');
const only = args.filter((a) => !a.startsWith('--'));
const bin = (name) => join(root, 'node_modules', '.bin', name);

const packages = readdirSync(join(root, 'packages'))
  .map((dir) => join(root, 'packages', dir))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private)
  .filter(({ pkg }) => only.length === 0 || only.includes(pkg.name))
  .sort((a, b) => a.pkg.name.localeCompare(b.pkg.name));

if (packages.length === 0) {
  console.error(only.length ? `no public package named ${only.join(', ')}` : 'no public packages found');
  process.exit(1);
}

function run(cmd, argv, cwd) {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

const log = (line) => {
  if (!json) console.log(line);
};

const failedBuilds = new Set();
if (build) {
  // One turbo run: each package's dependencies build first (turbo.json "^build"), cached.
  log(`building ${packages.length} packages...`);
  const filters = packages.map(({ pkg }) => `--filter=${pkg.name}`);
  const r = run(bin('turbo'), ['run', 'build', '--concurrency=1', '--continue', '--output-logs=errors-only', ...filters], root);
  if (r.status !== 0) {
    // turbo's summary line: "Failed:    @deadbolt/a#build, @deadbolt/b#build"
    const line = /Failed:\s+(.+)/.exec(r.output)?.[1] ?? '';
    for (const task of line.split(',')) failedBuilds.add(task.trim().replace(/#build$/, ''));
    log(`build failed for ${[...failedBuilds].join(', ') || 'some packages'}; turbo said:\n${r.output.split('\n').filter((l) => /error|Error|Failed/.test(l)).slice(0, 40).join('\n')}`);
  }
}

/** STYLE.md's rules for package.json, which neither publint nor attw checks. */
function manifestProblems(pkg) {
  const problems = [];
  if (pkg.type !== 'module') problems.push('"type" is not "module"');
  if (pkg.sideEffects !== false) problems.push('"sideEffects" is not false');
  if (!pkg.exports || typeof pkg.exports !== 'object') problems.push('no "exports" map');
  if (!Array.isArray(pkg.files)) problems.push('no "files" list');
  if (!pkg.engines?.node) problems.push('no "engines.node"');
  if (!pkg.license) problems.push('no "license"');
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (subpath.includes('*')) problems.push(`exports "${subpath}": a pattern export (STYLE.md: no "./*")`);
    if (typeof target !== 'object' || target === null) continue;
    const keys = Object.keys(target);
    if (keys[0] !== '@deadbolt/source') problems.push(`exports "${subpath}": "@deadbolt/source" must be the first condition`);
    if (keys.includes('types') && keys[1] !== 'types') problems.push(`exports "${subpath}": "types" must come right after "@deadbolt/source"`);
  }
  return problems;
}

/** The resolutions attw's esm-only profile leaves out: CommonJS require, and TypeScript's node10. */
const ESM_ONLY_IGNORED = new Set(['node10', 'node16-cjs']);

function describeProblem(p) {
  const where = p.resolutionKind ?? p.resolutionOption ?? '';
  const what = p.moduleSpecifier ? ` ${p.moduleSpecifier} in ${p.fileName}` : p.entrypoint ? ` ${p.entrypoint}` : '';
  return `${p.kind} (${where})${what}`;
}

const results = [];
for (const { dir, pkg } of packages) {
  const result = { name: pkg.name, ok: true, built: !failedBuilds.has(pkg.name), manifest: [], publint: '', attw: '', tarball: [] };
  results.push(result);
  result.manifest = manifestProblems(pkg);
  if (result.manifest.length > 0) result.ok = false;
  if (failedBuilds.has(pkg.name)) {
    result.ok = false;
    result.publint = result.attw = 'build failed (see above); not checked';
    continue;
  }
  if (!existsSync(join(dir, 'dist'))) {
    result.ok = false;
    result.publint = result.attw = 'not built (dist/ missing)';
    continue;
  }
  const out = mkdtempSync(join(tmpdir(), 'deadbolt-pack-'));
  try {
    const pack = run('pnpm', ['pack', '--pack-destination', out], dir);
    const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
    if (pack.status !== 0 || !tarball) {
      result.ok = false;
      result.publint = result.attw = `pnpm pack failed: ${pack.output}`;
      continue;
    }
    const listing = run('tar', ['-tzf', join(out, tarball)], out).output.split('\n');
    result.tarball = listing;
    if (!listing.includes('package/README.md')) {
      result.ok = false;
      result.manifest.push('README.md is not in the tarball');
    }
    const publint = run(bin('publint'), ['run', join(out, tarball), '--strict'], dir);
    result.publint = publint.output;
    // attw decides from its JSON report: its own exit status also counts problems of the
    // ignored resolutions when they carry `resolutionOption` instead of `resolutionKind`
    // (0.18.5, InternalResolutionError), so a node10-only problem would fail esm-only.
    const report = run(bin('attw'), [join(out, tarball), '--profile', 'esm-only', '--format', 'json'], dir);
    let problems;
    try {
      problems = JSON.parse(report.stdout).analysis.problems ?? [];
    } catch {
      problems = [{ kind: 'attw did not produce a report', output: report.output }];
    }
    result.attwProblems = problems.filter((p) => !ESM_ONLY_IGNORED.has(p.resolutionKind ?? p.resolutionOption));
    result.attwIgnored = problems.filter((p) => ESM_ONLY_IGNORED.has(p.resolutionKind ?? p.resolutionOption)).map(describeProblem);
    const table = json ? { output: '' } : run(bin('attw'), [join(out, tarball), '--profile', 'esm-only', '--format', 'table-flipped', '--no-emoji', '--no-color'], dir);
    result.attw = table.output;
    result.publintOk = publint.status === 0;
    result.attwOk = result.attwProblems.length === 0;
    if (!result.publintOk || !result.attwOk) result.ok = false;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (json) {
  console.log(JSON.stringify(results.map(({ tarball, attw, attwProblems, ...r }) => ({ ...r, attwProblems: (attwProblems ?? []).map(describeProblem), files: tarball.length })), null, 2));
} else {
  for (const r of results) {
    console.log(`\n=== ${r.name}: ${r.ok ? 'ok' : 'FAILED'}`);
    for (const p of r.manifest) console.log(`  package.json: ${p}`);
    // Full tool output for failures (and with --verbose); a summary line otherwise.
    const full = !r.ok || args.includes('--verbose');
    console.log(`  publint --strict: ${r.publintOk ? 'ok' : 'FAILED'}`);
    if (full || /Suggestions:/.test(r.publint)) console.log(indent(r.publint.split('\n').filter((l) => !/^(Running publint|Unpacking|Packing|Linting)/.test(l)).join('\n')));
    console.log(`  attw --profile esm-only: ${r.attwOk ? 'ok' : 'FAILED'}`);
    if (full) console.log(indent(r.attw));
    for (const p of r.attwProblems ?? []) console.log(`    problem: ${describeProblem(p)}`);
    for (const p of r.attwIgnored ?? []) console.log(`    ignored by the esm-only profile: ${p}`);
  }
  console.log('\n| package | build | package.json | publint | attw (esm-only) |\n|---|---|---|---|---|');
  for (const r of results) {
    const built = !failedBuilds.has(r.name);
    const cell = (ok) => (built ? (ok ? 'ok' : 'FAILED') : '—');
    console.log(`| ${r.name} | ${built ? 'ok' : 'FAILED'} | ${r.manifest.length ? 'FAILED' : 'ok'} | ${cell(r.publintOk)} | ${cell(r.attwOk)} |`);
  }
  const failed = results.filter((r) => !r.ok);
  console.log(failed.length ? `\n${failed.length} of ${results.length} packages failed` : `\nall ${results.length} packages ok`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);

function indent(text) {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => `    ${l}`)
    .join('\n');
}
