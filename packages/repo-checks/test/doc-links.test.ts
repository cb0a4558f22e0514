/**
 * Relative links in the guides and READMEs lead somewhere: the file exists and, for a
 * `#fragment`, the target has a heading with that GitHub anchor.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { guideFiles } from '../src/doc-blocks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => anchor(m[1] as string)));
}

test('relative links in docs/*.md, README.md and the package READMEs resolve', () => {
  const broken: string[] = [];
  for (const file of guideFiles(root)) {
    const text = readFileSync(join(root, file), 'utf8').replace(/^(```|~~~)[\s\S]*?^\1/gm, (block) => block.replace(/[^\n]/g, ' '));
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const href = m[1] as string;
        if (/^[a-z]+:/i.test(href)) continue; // https:, mailto:
        const [path = '', fragment] = href.split('#');
        const target = path === '' ? join(root, file) : normalize(join(root, dirname(file), path));
        if (!existsSync(target)) broken.push(`${file}:${i + 1} ${href}: no such file`);
        else if (fragment && target.endsWith('.md') && !anchorsOf(target).has(fragment)) broken.push(`${file}:${i + 1} ${href}: no heading #${fragment}`);
      }
    });
  }
  expect(broken, broken.join('\n')).toEqual([]);
});
