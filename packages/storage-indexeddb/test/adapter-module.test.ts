import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { isDeadboltError, STORAGE_SPECIFICATION_VERSION, type StorageAdapterModule } from '@deadbolt/spec';
import { expect, test } from 'vitest';
import * as mod from '../src/index.js';

test('the package is a storage adapter module for configuration by name (`indexeddb`)', async () => {
  const m: StorageAdapterModule = mod;
  const indexedDB = new IDBFactory();
  const a = await m.createStorageAdapter({ name: 'by-config', indexedDB });
  expect(a.specificationVersion).toBe(STORAGE_SPECIFICATION_VERSION);
  await a.batch([{ type: 'put', key: ['k'], value: new Uint8Array([1]) }]);
  await a.close();
  // The same name is the same database.
  const b = await m.createStorageAdapter({ name: 'by-config', indexedDB });
  expect(Array.from((await b.get(['k'])) ?? [])).toEqual([1]);
  await b.close();
});

test('a configuration without a database name is rejected with INVALID_ARGUMENT', () => {
  let error: unknown;
  try {
    mod.createStorageAdapter({});
  } catch (e) {
    error = e;
  }
  expect(isDeadboltError(error, 'INVALID_ARGUMENT')).toBe(true);
  expect(isDeadboltError(error) && error.details).toEqual({ field: 'options.name', expected: 'a non-empty database name' });
});
