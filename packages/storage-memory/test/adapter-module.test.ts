import { expect, test } from 'vitest';
import { STORAGE_SPECIFICATION_VERSION, type StorageAdapterModule } from '@deadbolt/spec';
import * as mod from '../src/index.js';

test('the package is a storage adapter module for configuration by name', async () => {
  const m: StorageAdapterModule = mod;
  const a = await m.createStorageAdapter({});
  const b = await m.createStorageAdapter({});
  expect(a.specificationVersion).toBe(STORAGE_SPECIFICATION_VERSION);
  await a.batch([{ type: 'put', key: ['k'], value: new Uint8Array([1]) }]);
  expect(await b.get(['k'])).toBeUndefined(); // independent instances
});
