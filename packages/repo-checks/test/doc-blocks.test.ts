/**
 * Every ```ts block of the guides (docs/*.md), the root README and the package READMEs
 * type-checks against the workspace's sources; and the checker itself finds errors where
 * they are.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { checkDocBlocks, collectDocBlocks, extractDocBlocks, formatDiagnostic, guideFiles } from '../src/doc-blocks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const scratch = (name: string): string => fileURLToPath(new URL(`../.doc-blocks/${name}/`, import.meta.url));

describe('extracting blocks', () => {
  const md = [
    '# Title', // 1
    '', // 2
    '```ts', // 3
    'const a = 1;', // 4
    '```', // 5
    '```sh', // 6
    'echo not ts', // 7
    '```', // 8
    '- a list item:', // 9
    '  ```typescript', // 10
    '  const b: number = 2;', // 11
    '    const c = 3;', // 12
    '  ```', // 13
    '````ts no-check', // 14
    'fragment(', // 15
    '```', // 16
    '````', // 17
    '~~~ts', // 18
    'const d = 4;', // 19
    '~~~', // 20
  ].join('\n');
  const blocks = extractDocBlocks(md, 'x.md');

  test('finds ts and typescript blocks, with the line of their first code line', () => {
    expect(blocks.map((b) => [b.line, b.code, b.noCheck])).toEqual([
      [4, 'const a = 1;', false],
      [11, 'const b: number = 2;\n  const c = 3;', false], // the fence's indentation removed
      [15, 'fragment(\n```', true], // a longer fence holds a shorter one; no-check marked
      [19, 'const d = 4;', false],
    ]);
  });

  test('the guide files include docs, the root README and every package README', () => {
    const files = guideFiles(root);
    expect(files).toContain('docs/quickstart.md');
    expect(files).toContain('README.md');
    expect(files).toContain('packages/core/README.md');
  });
});

test('the checker reports a wrong block at its markdown file and line, and passes good ones', () => {
  const md = [
    'Good:', // 1
    '```ts', // 2
    'const n: number = 1;', // 3
    'export const twice = n * 2;', // 4
    '```', // 5
    'Bad:', // 6
    '```ts', // 7
    'const s: string = 1;', // 8
    '```', // 9
    'Skipped:', // 10
    '```ts no-check', // 11
    'this is not TypeScript', // 12
    '```', // 13
    'Top-level await and names reused across blocks are fine:', // 14
    '```ts', // 15
    'const n = await Promise.resolve(2);', // 16
    '```', // 17
  ].join('\n');
  const result = checkDocBlocks(extractDocBlocks(md, 'fixture.md'), { root, workDir: scratch('fixture') });
  expect(result.checked).toBe(3);
  expect(result.skipped.map((b) => b.line)).toEqual([12]);
  expect(result.fatal).toEqual([]);
  expect(result.errors.map(formatDiagnostic)).toEqual([expect.stringMatching(/^fixture\.md:8:7 TS2322 Type 'number' is not assignable to type 'string'/)]);
});

test('every ```ts block of the guides and READMEs type-checks', () => {
  const blocks = collectDocBlocks(root);
  const result = checkDocBlocks(blocks, { root, workDir: scratch('guides') });
  const report = [
    ...result.errors.map(formatDiagnostic),
    ...result.fatal.map((f) => `tsc: ${f}`),
  ].join('\n');
  expect(report, `errors in documentation code blocks (fix the block, or mark a fragment \`\`\`ts no-check):\n${report}`).toBe('');
  // The guides are checked, not skipped: a handful of no-check fragments at most.
  expect(result.checked).toBeGreaterThanOrEqual(20);
  expect(result.skipped.length).toBeLessThanOrEqual(3);
});
