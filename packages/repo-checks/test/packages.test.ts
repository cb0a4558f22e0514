/**
 * What every public package (packages/* without "private": true) must have for the
 * documentation: a README with an install command and a type-checked example, a place in
 * the typedoc run, and a dependency of this package (so its README's blocks resolve).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { extractDocBlocks } from '../src/doc-blocks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const own = JSON.parse(readFileSync(join(root, 'packages/repo-checks/package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const typedoc = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8')) as { entryPoints: string[]; packageOptions?: { entryPoints?: string[] } };

interface Manifest {
  name: string;
  private?: boolean;
  exports?: Record<string, string | Record<string, string>>;
  typedocOptions?: { entryPoints?: string[] };
}

const publicPackages = readdirSync(join(root, 'packages'))
  .filter((dir) => existsSync(join(root, 'packages', dir, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest }))
  .filter(({ pkg }) => pkg.private !== true);

test('the workspace has public packages', () => {
  expect(publicPackages.map((p) => p.pkg.name)).toContain('@deadbolt/core');
});

describe.each(publicPackages)('$pkg.name', ({ dir, pkg }) => {
  test('has a README with an install command and an example that is type-checked', () => {
    const file = join(root, 'packages', dir, 'README.md');
    expect(existsSync(file), `packages/${dir}/README.md is missing`).toBe(true);
    const text = readFileSync(file, 'utf8');
    expect(text, 'no install command naming the package').toMatch(new RegExp(`(npm install|pnpm add)[^\\n]*${pkg.name.replace('/', '\\/')}`));
    const checked = extractDocBlocks(text, file).filter((b) => !b.noCheck);
    expect(checked.length, 'no ```ts example (without no-check)').toBeGreaterThan(0);
  });

  test('is listed in typedoc.json, with every export as an entry point', () => {
    expect(typedoc.entryPoints, `add "packages/${dir}" to typedoc.json entryPoints`).toContain(`packages/${dir}`);
    // Each subpath export's source (the "@deadbolt/source" target) must be a typedoc entry:
    // the package's own "typedocOptions.entryPoints", else typedoc.json's packageOptions.
    const entries = (pkg.typedocOptions?.entryPoints ?? typedoc.packageOptions?.entryPoints ?? []).map((e) => e.replace(/^\.\//, ''));
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      if (subpath === './package.json' || typeof target !== 'object') continue;
      const source = target['@deadbolt/source']?.replace(/^\.\//, '');
      expect(source, `exports["${subpath}"] has no "@deadbolt/source" condition`).toBeDefined();
      expect(entries, `exports["${subpath}"] (${source}) is not documented: add it to "typedocOptions.entryPoints" in packages/${dir}/package.json`).toContain(source);
    }
  });

  test('is a devDependency of @deadbolt/repo-checks, so its README blocks resolve', () => {
    expect(own.devDependencies[pkg.name], `add "${pkg.name}": "workspace:*" to packages/repo-checks/package.json`).toBe('workspace:*');
  });
});
