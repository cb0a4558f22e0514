#!/usr/bin/env node
// The browser bundle size of @deadbolt/core, crypto dependencies included: esbuild, ESM,
// platform browser, the `browser` export condition (so `#crypto-default` is the WebCrypto
// provider), minified, from the built dist/ (what an application installs). Sizes are
// bytes; gzip is level 9, brotli quality 11.
//
//   node scripts/bundle-size.mjs [--json] [--no-build] [--check]
//
// `--check` exits 1 when the createClient bundle is over the target (for CI); without it
// the script only reports.
//
// Rows (bundled with code splitting, as an application's bundler does; each file gzipped
// on its own, as it is served):
//   createClient                what a page loads to create a client: the entry chunk and
//                               the chunks it imports statically
//   createClient + lazy chunks  the same plus the chunks it imports dynamically (the group
//                               layer, loaded on the client's first group use)
//   whole API                   `export * from '@deadbolt/core'`: everything the package exports
// Then, for the createClient bundle: what each bundled package costs (the gzip bytes saved
// when that package alone is left out of the bundle: shared code counts for each), and the
// largest modules by minified bytes.
//
// Target (issue 8): under 60 KiB gzip for the createClient bundle.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const coreDir = join(root, 'packages', 'core');
const args = process.argv.slice(2);
const json = args.includes('--json');
const TARGET_GZIP = 60 * 1024;

if (!args.includes('--no-build')) {
  // dist/ of core and of its workspace dependency (turbo.json "^build"); cached by turbo.
  const r = spawnSync(join(root, 'node_modules', '.bin', 'turbo'), ['run', 'build', '--filter=@deadbolt/core', '--output-logs=errors-only'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    console.error(`building @deadbolt/core failed:\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
}

const ENTRIES = {
  createClient: "export { createClient } from '@deadbolt/core';",
  'whole API': "export * from '@deadbolt/core';",
};

const sizes = (code) => ({
  minified: code.length,
  gzip: gzipSync(code, { level: 9 }).length,
  brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
});
const sum = (files, field) => files.reduce((n, f) => n + f[field], 0);
const tmp = mkdtempSync(join(tmpdir(), 'deadbolt-bundle-size-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/**
 * Bundles `contents` as an application in packages/core would import it, with code
 * splitting: `initial` is what loading the entry fetches (the entry chunk and its static
 * imports, transitively), `lazy` the chunks only dynamic imports reach.
 */
async function bundle(contents, external = []) {
  // Resolved from packages/core, so `@deadbolt/core` is the package itself (its exports).
  const entry = join(coreDir, `.bundle-size-entry-${process.pid}.js`);
  writeFileSync(entry, contents);
  let result;
  try {
    result = await build({
      entryPoints: { entry },
      bundle: true,
      splitting: true,
      outdir: join(tmp, 'out'),
      format: 'esm',
      platform: 'browser',
      conditions: ['browser'],
      target: 'es2022',
      minify: true,
      write: false,
      metafile: true,
      external,
      logLevel: 'silent',
    });
  } finally {
    rmSync(entry, { force: true });
  }
  const outputs = result.metafile.outputs;
  const byPath = new Map(result.outputFiles.map((f) => [relative(process.cwd(), f.path), f.contents]));
  const entryOut = Object.keys(outputs).find((o) => outputs[o].entryPoint !== undefined);
  const initial = new Set();
  const visit = (o) => {
    if (initial.has(o)) return;
    initial.add(o);
    for (const i of outputs[o].imports) if (i.kind === 'import-statement' && outputs[i.path]) visit(i.path);
  };
  visit(entryOut);
  const file = (o) => ({ path: o, ...sizes(byPath.get(o)), inputs: outputs[o].inputs });
  const all = Object.keys(outputs).filter((o) => o.endsWith('.js'));
  return {
    initial: all.filter((o) => initial.has(o)).map(file),
    lazy: all.filter((o) => !initial.has(o)).map(file),
    warnings: result.warnings.length,
  };
}

/** `@scope/name` of a bundled input path, or the workspace package it lies in. */
function packageOf(path) {
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = /packages\/([^/]+)\//.exec(path);
  return m ? `@deadbolt/${m[1]}` : path;
}

const rows = [];
let detail;
try {
  const client = await bundle(ENTRIES.createClient);
  const whole = await bundle(ENTRIES['whole API']);
  const row = (name, files) => ({ bundle: name, files: files.length, minified: sum(files, 'minified'), gzip: sum(files, 'gzip'), brotli: sum(files, 'brotli') });
  rows.push(row('createClient', client.initial), row('createClient + lazy chunks', [...client.initial, ...client.lazy]), row('whole API', [...whole.initial, ...whole.lazy]));
  detail = { contents: ENTRIES.createClient, b: client };
} catch (e) {
  console.error(`bundling failed:\n${(e.errors ?? [e]).map((x) => x.text ?? String(x)).join('\n')}`);
  process.exit(1);
}

// By package, for the initial load: minified bytes in the output, and the marginal gzip
// cost (rebundle without it).
const inputs = Object.assign({}, ...detail.b.initial.map((f) => f.inputs));
const byPackage = new Map();
const byModule = [];
for (const [path, { bytesInOutput }] of Object.entries(inputs)) {
  const pkg = packageOf(path);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
  byModule.push({ module: relative(root, path).replace(/^node_modules\/\.pnpm\/[^/]+\/node_modules\//, ''), minified: bytesInOutput });
}
const packages = [];
for (const [pkg, minified] of [...byPackage].sort((a, b) => b[1] - a[1])) {
  let withoutGzip = null;
  if (pkg !== '@deadbolt/core') {
    // Leave the package (and its subpaths) out: what is left is everything else.
    const without = await bundle(detail.contents, [pkg, `${pkg}/*`]);
    withoutGzip = sum(without.initial, 'gzip');
  }
  packages.push({ package: pkg, minified, gzipSaved: withoutGzip === null ? null : rows[0].gzip - withoutGzip });
}
byModule.sort((a, b) => b.minified - a.minified);

const report = {
  target: { gzip: TARGET_GZIP, bundle: 'createClient', met: rows[0].gzip <= TARGET_GZIP },
  bundles: rows,
  packages,
  largestModules: byModule.slice(0, 12),
  esbuildWarnings: detail.b.warnings,
};

if (json) {
  console.log(JSON.stringify(report));
} else {
  const kib = (n) => (n / 1024).toFixed(1);
  console.log('@deadbolt/core for a browser (esbuild, platform browser, condition browser, minified)\n');
  console.log('| bundle | files | minified | gzip | brotli |\n|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.bundle} | ${r.files} | ${kib(r.minified)} KiB | ${kib(r.gzip)} KiB | ${kib(r.brotli)} KiB |`);
  console.log(`\nlazy chunks of createClient (fetched on first use): ${detail.b.lazy.map((f) => `${kib(f.gzip)} KiB gzip`).join(', ') || 'none'}`);
  console.log(`\ntarget: createClient under ${kib(TARGET_GZIP)} KiB gzip: ${report.target.met ? 'met' : `NOT met (${kib(rows[0].gzip - TARGET_GZIP)} KiB over)`}`);
  console.log('\ncreateClient initial load by package (gzip saved = the load without that package):\n');
  console.log('| package | minified | gzip saved |\n|---|---:|---:|');
  for (const p of packages) console.log(`| ${p.package} | ${kib(p.minified)} KiB | ${p.gzipSaved === null ? '—' : `${kib(p.gzipSaved)} KiB`} |`);
  console.log('\nlargest modules (minified):\n');
  console.log('| module | minified |\n|---|---:|');
  for (const m of report.largestModules) console.log(`| ${m.module} | ${kib(m.minified)} KiB |`);
  if (detail.b.warnings) console.log(`\nesbuild warnings: ${detail.b.warnings} (see docs/architecture.md, "Bundling for browsers")`);
}
if (args.includes('--check') && !report.target.met) {
  console.error(`bundle-size: createClient is ${rows[0].gzip} bytes gzip, over the ${TARGET_GZIP}-byte target`);
  process.exit(1);
}
