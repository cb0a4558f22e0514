/**
 * The client's group layer stays out of an application's initial bundle (issue 8's size
 * target; scripts/bundle-size.mjs reports the sizes). `createClient` loads
 * `client/groups.ts` with a dynamic import on first group use, and the group engine is the
 * `@deadbolt/core/group` subpath, not part of the root entry. A static import of either
 * from the client's side (easy to add by accident) would pull a third of the client's code
 * back into every page load; this test bundles `createClient` for a browser, with code
 * splitting as an application's bundler does, and fails if that happened.
 */
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { expect, test } from 'vitest';

const coreDir = fileURLToPath(new URL('../../core/', import.meta.url));

/** Source files (relative to packages/core) in the initial chunks and in the lazy ones. */
async function split(): Promise<{ initial: Set<string>; lazy: Set<string> }> {
  const result = await build({
    stdin: { contents: "export { createClient } from '@deadbolt/core';", resolveDir: coreDir, loader: 'js', sourcefile: 'app.js' },
    bundle: true,
    splitting: true,
    outdir: '/virtual-out',
    format: 'esm',
    platform: 'browser',
    // From the sources, as the workspace runs them (the same graph as dist/).
    conditions: ['@deadbolt/source', 'browser'],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const outputs: Metafile['outputs'] = result.metafile.outputs;
  const entry = Object.keys(outputs).find((o) => outputs[o]!.entryPoint !== undefined)!;
  const initialOutputs = new Set<string>();
  const visit = (o: string): void => {
    if (initialOutputs.has(o)) return;
    initialOutputs.add(o);
    for (const i of outputs[o]!.imports) if (i.kind === 'import-statement' && outputs[i.path]) visit(i.path);
  };
  visit(entry);
  const initial = new Set<string>();
  const lazy = new Set<string>();
  for (const [o, out] of Object.entries(outputs)) {
    if (!o.endsWith('.js')) continue;
    for (const input of Object.keys(out.inputs)) {
      const m = /(?:^|\/)core\/(src\/.*)$/.exec(input);
      if (m) (initialOutputs.has(o) ? initial : lazy).add(m[1]!);
    }
  }
  return { initial, lazy };
}

test('createClient leaves the group layer and engine to a lazily loaded chunk', async () => {
  const { initial, lazy } = await split();
  // The client itself is in the initial load ...
  expect(initial).toContain('src/client/client.ts');
  expect(initial).toContain('src/session/session-manager.ts');
  // ... the group layer and every group engine module are not, and are in a lazy chunk.
  const groupModules = [...lazy].filter((f) => f.startsWith('src/group/') || f === 'src/client/groups.ts');
  expect(groupModules).toContain('src/client/groups.ts');
  expect(groupModules).toContain('src/group/group-engine.ts');
  expect(groupModules).toContain('src/group/group-manager.ts');
  expect([...initial].filter((f) => f.startsWith('src/group/') || f === 'src/client/groups.ts')).toEqual([]);
}, 60_000);
