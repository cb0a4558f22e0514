/**
 * Adapters named by configuration (a config file or an environment variable) instead of
 * code: `{ adapter: 'sqlite', options: { path: 'chat.db' } }`. Short names map to the
 * Deadbolt packages; any other name is imported as a package that exports
 * `createStorageAdapter` / `createTransportAdapter`. Core never imports an adapter
 * statically: the import happens only when a configuration asks for one.
 *
 * @module
 */
import {
  UsageError,
  type StorageAdapter,
  type StorageAdapterModule,
  type TransportAdapter,
  type TransportAdapterModule,
} from '@deadbolt/spec';
import { checkedStorage } from '../storage/storage-version.js';

/** An adapter named by configuration. */
export interface AdapterConfig {
  /** A short name (`memory`, `sqlite`, `indexeddb`, `websocket`, `http-polling`, `webrtc`) or a package name. */
  readonly adapter: string;
  /** Passed to the package's factory. */
  readonly options?: Record<string, unknown>;
}

const STORAGE_PACKAGES: Record<string, string> = {
  memory: '@deadbolt/storage-memory',
  sqlite: '@deadbolt/storage-sqlite',
  indexeddb: '@deadbolt/storage-indexeddb',
};

const TRANSPORT_PACKAGES: Record<string, string> = {
  websocket: '@deadbolt/transport-websocket',
  'http-polling': '@deadbolt/transport-http-polling',
  webrtc: '@deadbolt/transport-webrtc',
};

/**
 * Imports an adapter package by name. The default imports from `@deadbolt/core`'s own
 * location, which finds packages installed beside it (npm, yarn, hoisted pnpm, bundlers);
 * with pnpm's isolated layout pass `loadModule: (name) => import(name)` from the
 * application, so the name resolves from the application's own dependencies.
 */
export type ModuleLoader = (specifier: string) => Promise<unknown>;

const defaultLoader: ModuleLoader = (specifier) => import(/* @vite-ignore */ specifier);

/** npm package names only: a configuration value must never name a URL or a file. */
const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

async function load<T>(specifier: string, field: string, loader: ModuleLoader = defaultLoader): Promise<T> {
  if (!PACKAGE_NAME.test(specifier)) {
    throw new UsageError('INVALID_ARGUMENT', { message: `${field}: not a package name`, details: { field, expected: 'a short adapter name or an npm package name' } });
  }
  try {
    return (await loader(specifier)) as T;
  } catch (cause) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: `${field}: cannot load adapter package ${specifier} (is it installed?)`,
      details: { field, expected: 'an installed adapter package' },
      cause,
    });
  }
}

function isConfig(value: unknown): value is AdapterConfig {
  return typeof value === 'object' && value !== null && typeof (value as AdapterConfig).adapter === 'string';
}

/** A storage adapter instance, or one created from its configuration. */
export async function resolveStorage(value: StorageAdapter | AdapterConfig, loader?: ModuleLoader): Promise<StorageAdapter> {
  if (!isConfig(value)) return checkedStorage(value);
  const mod = await load<Partial<StorageAdapterModule>>(STORAGE_PACKAGES[value.adapter] ?? value.adapter, 'storage.adapter', loader);
  if (typeof mod.createStorageAdapter !== 'function') {
    throw new UsageError('INVALID_ARGUMENT', { message: 'storage.adapter: package has no createStorageAdapter', details: { field: 'storage.adapter', expected: 'a storage adapter package' } });
  }
  return checkedStorage(await mod.createStorageAdapter(value.options ?? {}));
}

/** A transport adapter instance, or one created from its configuration. */
export async function resolveTransport(value: TransportAdapter | AdapterConfig, loader?: ModuleLoader): Promise<TransportAdapter> {
  if (!isConfig(value)) return value;
  const mod = await load<Partial<TransportAdapterModule>>(TRANSPORT_PACKAGES[value.adapter] ?? value.adapter, 'transport.adapter', loader);
  if (typeof mod.createTransportAdapter !== 'function') {
    throw new UsageError('INVALID_ARGUMENT', { message: 'transport.adapter: package has no createTransportAdapter', details: { field: 'transport.adapter', expected: 'a transport adapter package' } });
  }
  return mod.createTransportAdapter(value.options ?? {});
}
