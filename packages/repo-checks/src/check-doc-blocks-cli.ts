/**
 * `pnpm check:docs`: type-checks every ```ts block of docs/*.md, README.md and the package
 * READMEs; prints each error as `file:line:column TScode message` and exits 1 on any.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { checkDocBlocks, collectDocBlocks, formatDiagnostic } from './doc-blocks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const blocks = collectDocBlocks(root);
const result = checkDocBlocks(blocks, { root, workDir: fileURLToPath(new URL('../.doc-blocks/cli/', import.meta.url)) });

for (const e of result.errors) console.error(formatDiagnostic(e));
for (const f of result.fatal) console.error(`tsc: ${f}`);
if (result.otherErrors.length > 0) {
  console.error(`\n${result.otherErrors.length} error(s) outside the blocks (package sources; see pnpm typecheck):`);
  for (const o of result.otherErrors) console.error(`  ${o.split('\n')[0]}`);
}
for (const s of result.skipped) console.log(`skipped (no-check): ${s.file}:${s.line}`);
console.log(`${result.checked} blocks type-checked, ${result.skipped.length} skipped, ${result.errors.length} errors`);
process.exit(result.errors.length > 0 || result.fatal.length > 0 ? 1 : 0);
