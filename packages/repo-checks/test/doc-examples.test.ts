/**
 * The complete storage adapter of docs/writing-adapters.md passes the storage conformance
 * suite, as the guide says: the block is taken from the guide itself, so the two cannot
 * drift apart.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StorageAdapter } from '@deadbolt/spec';
import { describeStorageConformance } from '@deadbolt/test-kit';
import { extractDocBlocks } from '../src/doc-blocks.js';

const guide = fileURLToPath(new URL('../../../docs/writing-adapters.md', import.meta.url));
const block = extractDocBlocks(readFileSync(guide, 'utf8'), 'docs/writing-adapters.md').find((b) => b.code.includes('export function createMapStorage'));
if (!block) throw new Error('docs/writing-adapters.md no longer has the createMapStorage block this test runs');

const dir = fileURLToPath(new URL('../.doc-blocks/examples/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}map-storage.ts`, block.code);
const { createMapStorage } = (await import(pathToFileURL(`${dir}map-storage.ts`).href)) as { createMapStorage: () => StorageAdapter };

describeStorageConformance('docs/writing-adapters.md createMapStorage', {
  create: async () => createMapStorage(),
});
