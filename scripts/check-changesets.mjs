#!/usr/bin/env node
// Fails when a public package changed since the base without a changeset naming it.
//
//   node scripts/check-changesets.mjs [--base <ref>]
//   pnpm check:changesets -- --base <ref>
//
// Works on the git repository of the current directory.
//
// Base: the merge-base of HEAD and `--base <ref>`; without --base, of HEAD and
// `origin/<baseBranch>` (baseBranch from .changeset/config.json, default main) when that
// remote branch exists, else the local `<baseBranch>`. On the base branch itself, the
// merge-base is HEAD and only uncommitted work is checked.
//
// Changed: every file that differs between the base and the working tree (committed,
// staged, unstaged, and untracked files git does not ignore), so the check is the same
// before and after committing.
//
// A package needs a changeset when any file in its folder changed, except its tests
// (test/, tests/, __tests__/, *.test.*, *.spec.*, vitest.config.*, test-results/), which
// users never install. Private packages and packages in the config's "ignore" list never
// need one. A changeset counts when it was added or changed since the base (an older,
// unreleased changeset describes an older change), and names the package in its front
// matter. Changesets naming unknown packages, or with a bump other than
// major/minor/patch/none, fail the check too.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';

const args = process.argv.slice(2);
if (args.includes('-h') || args.includes('--help')) {
  console.log('usage: check-changesets.mjs [--base <ref>]');
  process.exit(0);
}
let baseArg;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--base') {
    baseArg = args[++i];
    if (!baseArg) fail('--base needs a git ref');
  } else if (args[i].startsWith('--base=')) baseArg = args[i].slice('--base='.length);
  else if (args[i] !== '--') fail(`unknown argument ${args[i]}`);
}

function fail(message) {
  console.error(`check-changesets: ${message}`);
  process.exit(2);
}

function git(...argv) {
  return execFileSync('git', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function gitOk(...argv) {
  try {
    git(...argv);
    return true;
  } catch {
    return false;
  }
}

let root;
try {
  root = git('rev-parse', '--show-toplevel');
} catch {
  fail('not inside a git repository');
}
process.chdir(root);

const configPath = join(root, '.changeset', 'config.json');
const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
const baseBranch = config.baseBranch ?? 'main';
const ignored = new Set(config.ignore ?? []);

// --- the base -------------------------------------------------------------------------
let baseRef = baseArg;
if (baseRef === undefined) {
  baseRef = [`origin/${baseBranch}`, baseBranch].find((ref) => gitOk('rev-parse', '--verify', '--quiet', `${ref}^{commit}`));
  if (baseRef === undefined) fail(`no origin/${baseBranch} or ${baseBranch} branch: pass --base <ref>`);
}
if (!gitOk('rev-parse', '--verify', '--quiet', `${baseRef}^{commit}`)) fail(`unknown ref ${baseRef}`);
let base;
try {
  base = git('merge-base', 'HEAD', baseRef);
} catch {
  fail(`HEAD and ${baseRef} have no common ancestor`);
}

// --- what changed ---------------------------------------------------------------------
const lines = (s) => s.split('\n').filter((l) => l !== '');
const changed = new Set([
  ...lines(git('diff', '--name-only', '--no-renames', base)),
  ...lines(git('ls-files', '--others', '--exclude-standard')),
]);

// --- the workspace's packages (pnpm-workspace.yaml globs: "dir/*" or "dir") -----------
function workspaceGlobs() {
  const file = join(root, 'pnpm-workspace.yaml');
  if (!existsSync(file)) return ['packages/*'];
  const globs = [];
  let inPackages = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^packages:\s*$/.test(line)) inPackages = true;
    else if (/^\S/.test(line)) inPackages = false;
    else if (inPackages) {
      const m = /^\s+-\s+['"]?([^'"#]+?)['"]?\s*(#.*)?$/.exec(line);
      if (m) globs.push(m[1]);
    }
  }
  return globs;
}

const packages = [];
for (const glob of workspaceGlobs()) {
  if (glob.startsWith('!')) continue;
  const dirs = glob.endsWith('/*')
    ? (existsSync(glob.slice(0, -2)) ? readdirSync(glob.slice(0, -2)).map((d) => posix.join(glob.slice(0, -2), d)) : [])
    : [glob];
  for (const dir of dirs) {
    const manifest = join(root, dir, 'package.json');
    if (!existsSync(manifest) || !statSync(join(root, dir)).isDirectory()) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
    if (pkg.name) packages.push({ dir, name: pkg.name, private: pkg.private === true });
  }
}
const byName = new Map(packages.map((p) => [p.name, p]));

const TEST_ONLY = [/(^|\/)(test|tests|__tests__|test-results)\//, /\.(test|spec)\.[cm]?[jt]sx?$/, /(^|\/)vitest\.config\.[cm]?[jt]s$/];
const needing = new Map();
for (const file of changed) {
  const pkg = packages.find((p) => file.startsWith(`${p.dir}/`));
  if (!pkg || pkg.private || ignored.has(pkg.name)) continue;
  const inside = file.slice(pkg.dir.length + 1);
  if (TEST_ONLY.some((re) => re.test(inside))) continue;
  if (!needing.has(pkg.name)) needing.set(pkg.name, []);
  needing.get(pkg.name).push(file);
}

// --- changesets added or changed since the base ---------------------------------------
const problems = [];
const named = new Map();
for (const file of [...changed].sort()) {
  if (!/^\.changeset\/[^/]+\.md$/.test(file) || file === '.changeset/README.md') continue;
  if (!existsSync(join(root, file))) continue; // deleted (released) changesets name nothing
  const text = readFileSync(join(root, file), 'utf8');
  const m = /^---\r?\n([\s\S]*?)\r?\n?---/.exec(text);
  if (!m) {
    problems.push(`${file}: no front matter (--- "package": bump ---)`);
    continue;
  }
  for (const line of m[1].split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const entry = /^\s*["']?([^"':]+)["']?\s*:\s*(\S+)\s*$/.exec(line);
    if (!entry) {
      problems.push(`${file}: cannot read front matter line ${JSON.stringify(line)}`);
      continue;
    }
    const [, name, bump] = entry;
    if (!byName.has(name)) problems.push(`${file}: names ${name}, which is not a package of this workspace`);
    if (!['major', 'minor', 'patch', 'none'].includes(bump)) problems.push(`${file}: ${name}: bump must be major, minor, patch or none, not ${bump}`);
    if (!named.has(name)) named.set(name, []);
    named.get(name).push(file);
  }
}

const missing = [...needing].filter(([name]) => !named.has(name)).sort(([a], [b]) => a.localeCompare(b));
const short = base.slice(0, 12);
console.log(`check-changesets: base ${baseRef} (merge-base ${short}); ${changed.size} files changed`);
for (const [name, files] of [...needing].sort(([a], [b]) => a.localeCompare(b))) {
  const by = named.get(name);
  console.log(`  ${by ? 'ok     ' : 'MISSING'} ${name} (${files.length} file${files.length === 1 ? '' : 's'})${by ? `: ${by.join(', ')}` : ''}`);
}
for (const [name, files] of missing) {
  problems.push(`${name} changed without a changeset naming it:\n${files.slice(0, 10).map((f) => `      ${f}`).join('\n')}${files.length > 10 ? `\n      ... and ${files.length - 10} more` : ''}`);
}
if (problems.length > 0) {
  console.error(`\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  console.error('\nAdd one with `pnpm changeset` (pick the packages and the bump, describe the change for users).');
  process.exit(1);
}
console.log(needing.size === 0 ? 'no public package changed' : 'every changed package has a changeset');
