/**
 * scripts/check-changesets.mjs against a real, temporary git repository: a small
 * workspace with a public package, a private one and an ignored one, changed in the
 * ways a branch changes them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, test } from 'vitest';

const script = fileURLToPath(new URL('../../../scripts/check-changesets.mjs', import.meta.url));

let repo: string;

function write(path: string, text: string): void {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), text);
}

function git(...args: string[]): string {
  return execFileSync('git', args, {
    cwd: repo,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  });
}

function commit(message: string): void {
  git('add', '-A');
  git('commit', '-q', '-m', message);
}

function check(...args: string[]): { status: number; output: string } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: join(repo, 'packages'), encoding: 'utf8' });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

const manifest = (name: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ name, version: '1.0.0', ...extra });

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), 'deadbolt-changesets-'));
  git('init', '-q', '-b', 'main');
  write('package.json', manifest('root', { private: true }));
  write('pnpm-workspace.yaml', "packages:\n  - packages/*\n  - 'tools'\n\nonlyBuiltDependencies:\n  - esbuild\n");
  write('.changeset/config.json', JSON.stringify({ baseBranch: 'main', ignore: ['@x/ignored'] }));
  write('.changeset/README.md', 'changesets\n');
  write('packages/lib/package.json', manifest('@x/lib'));
  write('packages/lib/src/index.ts', 'export const a = 1;\n');
  write('packages/lib/test/a.test.ts', '// test\n');
  write('packages/other/package.json', manifest('@x/other'));
  write('packages/other/src/index.ts', 'export const b = 1;\n');
  write('packages/internal/package.json', manifest('@x/internal', { private: true }));
  write('packages/internal/src/index.ts', 'export const c = 1;\n');
  write('packages/ignored/package.json', manifest('@x/ignored'));
  write('packages/ignored/src/index.ts', 'export const d = 1;\n');
  write('tools/package.json', manifest('@x/tools'));
  write('tools/index.ts', 'export const e = 1;\n');
  commit('base');
  git('checkout', '-q', '-b', 'feature');
});

afterEach(() => {
  rmSync(repo, { recursive: true, force: true });
});

test('nothing changed: passes', () => {
  const r = check('--base', 'main');
  expect(r.output).toContain('no public package changed');
  expect(r.status).toBe(0);
});

test('a committed change to a public package without a changeset fails, naming the package and file', () => {
  write('packages/lib/src/index.ts', 'export const a = 2;\n');
  commit('change lib');
  const r = check('--base', 'main');
  expect(r.status).toBe(1);
  expect(r.output).toContain('@x/lib changed without a changeset naming it');
  expect(r.output).toContain('packages/lib/src/index.ts');
  expect(r.output).not.toContain('@x/other');
});

test('uncommitted and untracked changes count too', () => {
  write('packages/lib/src/new-file.ts', 'export {};\n'); // untracked
  write('packages/other/src/index.ts', 'export const b = 2;\n'); // unstaged
  const r = check('--base', 'main');
  expect(r.status).toBe(1);
  expect(r.output).toContain('packages/lib/src/new-file.ts');
  expect(r.output).toContain('@x/other changed without a changeset');
});

test('a changeset naming the package satisfies it, and only that package', () => {
  write('packages/lib/src/index.ts', 'export const a = 2;\n');
  write('packages/other/src/index.ts', 'export const b = 2;\n');
  write('.changeset/brave-lib.md', '---\n"@x/lib": minor\n---\n\nA change.\n');
  commit('change both, changeset for lib');
  const r = check('--base', 'main');
  expect(r.status).toBe(1);
  expect(r.output).toMatch(/ok\s+@x\/lib .*\.changeset\/brave-lib\.md/);
  expect(r.output).toContain('@x/other changed without a changeset');

  write('.changeset/calm-other.md', "---\n'@x/other': patch\n---\n\nAnother.\n");
  const again = check('--base', 'main');
  expect(again.output).toContain('every changed package has a changeset');
  expect(again.status).toBe(0);
});

test('a package in a workspace folder listed by name (not a glob) is checked too', () => {
  write('tools/index.ts', 'export const e = 2;\n');
  const r = check('--base', 'main');
  expect(r.status).toBe(1);
  expect(r.output).toContain('@x/tools changed without a changeset');
});

test('tests, private packages and ignored packages need no changeset', () => {
  write('packages/lib/test/a.test.ts', '// changed test\n');
  write('packages/lib/test/helpers/util.ts', 'export {};\n');
  write('packages/lib/src/thing.test.ts', '// colocated test\n');
  write('packages/internal/src/index.ts', 'export const c = 2;\n');
  write('packages/ignored/src/index.ts', 'export const d = 2;\n');
  write('README.md', 'root files belong to no package\n');
  commit('no release needed');
  const r = check('--base', 'main');
  expect(r.output).toContain('no public package changed');
  expect(r.status).toBe(0);
});

test('a changeset that already existed at the base does not cover a new change', () => {
  write('.changeset/old.md', '---\n"@x/lib": patch\n---\n\nOld, unreleased.\n');
  commit('old changeset');
  git('checkout', '-q', 'main');
  git('merge', '-q', '--ff-only', 'feature');
  git('checkout', '-q', 'feature');
  write('packages/lib/src/index.ts', 'export const a = 3;\n');
  commit('new change');
  const r = check('--base', 'main');
  expect(r.status).toBe(1);
  expect(r.output).toContain('@x/lib changed without a changeset');
});

test('a changeset naming an unknown package or a bad bump fails', () => {
  write('.changeset/typo.md', '---\n"@x/lbi": minor\n"@x/lib": huge\n---\n\nTypos.\n');
  const r = check('--base', 'main');
  expect(r.status).toBe(1);
  expect(r.output).toContain('names @x/lbi, which is not a package of this workspace');
  expect(r.output).toContain('bump must be major, minor, patch or none, not huge');
});

test('the base is the merge-base: changes on the base branch after the fork are not this branch\'s', () => {
  git('checkout', '-q', 'main');
  write('packages/other/src/index.ts', 'export const b = 9;\n');
  commit('someone else changes other on main');
  git('checkout', '-q', 'feature');
  const r = check('--base', 'main');
  expect(r.output).toContain('no public package changed');
  expect(r.status).toBe(0);
});

test('without --base it uses the config\'s baseBranch; --base accepts any commit; a bad ref is a usage error', () => {
  write('packages/lib/src/index.ts', 'export const a = 2;\n');
  commit('change lib');
  const byDefault = check();
  expect(byDefault.output).toContain('base main');
  expect(byDefault.status).toBe(1);

  expect(check('--base', 'HEAD').status).toBe(0); // nothing since HEAD
  expect(check('--base=HEAD~1').status).toBe(1);

  const bad = check('--base', 'no-such-ref');
  expect(bad.status).toBe(2);
  expect(bad.output).toContain('unknown ref no-such-ref');
});
