/**
 * Type-checks the TypeScript code blocks of the guides (`docs/*.md`), the root README and
 * every package README, so that no guide shows an API that does not exist.
 *
 * Each ```ts (or ```typescript) block is written to its own module in a scratch folder
 * inside the workspace (so `@deadbolt/*` resolve through this package's dependencies and
 * the `@deadbolt/source` condition of tsconfig.base.json, to the packages' `src/`), then
 * one `tsc --noEmit` checks them all. Diagnostics are mapped back to the markdown file and
 * line. A block opts out with ```ts no-check: use it for fragments only.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';

/** One fenced TypeScript block of a markdown file. */
export interface DocBlock {
  /** The markdown file, relative to the repository root (or as given). */
  readonly file: string;
  /** The 1-based line, in the markdown file, of the block's first code line. */
  readonly line: number;
  /** The code, with the fence's indentation removed. */
  readonly code: string;
  /** The block carries the `no-check` marker. */
  readonly noCheck: boolean;
}

/** A type error in a block, at its place in the markdown file. */
export interface BlockDiagnostic {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly code: string;
  readonly message: string;
}

/** The outcome of {@link checkDocBlocks}. */
export interface DocCheckResult {
  /** Blocks type-checked. */
  readonly checked: number;
  /** Blocks skipped with `no-check`. */
  readonly skipped: readonly DocBlock[];
  /** Errors inside blocks: each fails the check. */
  readonly errors: readonly BlockDiagnostic[];
  /**
   * Errors tsc reported in files that are not blocks (the packages' own sources, reached
   * through the source condition). They belong to `pnpm typecheck`; listed for context.
   */
  readonly otherErrors: readonly string[];
  /** Diagnostics with no file (a broken configuration): each fails the check. */
  readonly fatal: readonly string[];
}

const TS_LANGS = new Set(['ts', 'typescript']);
const NO_CHECK = 'no-check';

/** The fenced ```ts / ```typescript blocks of `markdown`. */
export function extractDocBlocks(markdown: string, file: string): DocBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const [, indent = '', fence = '', lang = '', info = ''] = open;
    // Find the closing fence: same character, at least as long, nothing after it.
    let end = i + 1;
    const close = new RegExp(`^ *${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (end < lines.length && !close.test(lines[end] as string)) end++;
    if (TS_LANGS.has(lang.toLowerCase())) {
      const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
      blocks.push({ file, line: i + 2, code: body.join('\n'), noCheck: info.split(/\s+/).includes(NO_CHECK) });
    }
    i = end; // skip the block (and anything fence-like inside it)
  }
  return blocks;
}

/** The markdown files whose blocks are checked: docs/*.md, README.md, packages/*\/README.md. */
export function guideFiles(root: string): string[] {
  const files: string[] = [];
  const docs = join(root, 'docs');
  if (existsSync(docs)) {
    for (const f of readdirSync(docs).sort()) if (f.endsWith('.md')) files.push(join('docs', f));
  }
  if (existsSync(join(root, 'README.md'))) files.push('README.md');
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    if (existsSync(join(root, 'packages', dir, 'README.md'))) files.push(join('packages', dir, 'README.md'));
  }
  return files;
}

/** Every block of every guide file under `root`. */
export function collectDocBlocks(root: string, files = guideFiles(root)): DocBlock[] {
  return files.flatMap((f) => extractDocBlocks(readFileSync(join(root, f), 'utf8'), f));
}

export interface CheckOptions {
  /** The repository root (where tsconfig.base.json is). */
  readonly root: string;
  /**
   * The scratch folder for the generated modules: emptied first, kept afterwards for
   * inspection. It must lie inside a workspace package that depends on every package the
   * blocks import.
   */
  readonly workDir: string;
}

/** Writes the blocks as modules and runs `tsc --noEmit` over them. */
export function checkDocBlocks(blocks: readonly DocBlock[], options: CheckOptions): DocCheckResult {
  const workDir = resolve(options.workDir);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });

  const byModule = new Map<string, DocBlock>();
  const skipped: DocBlock[] = [];
  for (const block of blocks) {
    if (block.noCheck) {
      skipped.push(block);
      continue;
    }
    const name = `${block.file.replace(/[^A-Za-z0-9]+/g, '_')}__L${block.line}.ts`;
    // `export {}` after the code (line numbers unchanged) makes every block a module:
    // top-level await works and blocks never see each other's names.
    writeFileSync(join(workDir, name), `${block.code}\nexport {};\n`);
    byModule.set(resolve(workDir, name), block);
  }
  if (byModule.size === 0) return { checked: 0, skipped, errors: [], otherErrors: [], fatal: [] };

  writeFileSync(
    join(workDir, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: relative(workDir, join(options.root, 'tsconfig.base.json')),
        compilerOptions: { noEmit: true, skipLibCheck: true },
        include: ['./*.ts'],
      },
      null,
      2,
    ),
  );

  const tsc = createRequire(join(options.root, 'package.json')).resolve('typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', join(workDir, 'tsconfig.json'), '--pretty', 'false'], {
    cwd: workDir,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;

  const errors: BlockDiagnostic[] = [];
  const otherErrors: string[] = [];
  const fatal: string[] = [];
  // "path(line,col): error TS1234: message", continuation lines indented.
  const entries: string[] = [];
  for (const line of `${run.stdout}${run.stderr}`.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line) && entries.length > 0) entries[entries.length - 1] += `\n${line}`;
    else entries.push(line);
  }
  for (const entry of entries) {
    const m = /^(.+?)\((\d+),(\d+)\): error (TS\d+): ([\s\S]*)$/.exec(entry);
    const block = m ? byModule.get(resolve(workDir, m[1] as string)) : undefined;
    if (m && block) {
      errors.push({ file: block.file, line: block.line + Number(m[2]) - 1, column: Number(m[3]), code: m[4] as string, message: m[5] as string });
    } else if (m) {
      otherErrors.push(entry);
    } else {
      fatal.push(entry);
    }
  }
  if (run.status !== 0 && errors.length === 0 && otherErrors.length === 0 && fatal.length === 0) {
    fatal.push(`tsc exited with status ${run.status} and no diagnostics`);
  }
  return { checked: byModule.size, skipped, errors, otherErrors, fatal };
}

/** `docs/x.md:12:3 TS2304 Cannot find name 'y'.` */
export function formatDiagnostic(d: BlockDiagnostic): string {
  return `${d.file}:${d.line}:${d.column} ${d.code} ${d.message}`;
}
