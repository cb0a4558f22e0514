import { IDBFactory } from 'fake-indexeddb';

/** The rejection of `promise`; fails if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but it resolved');
}

/**
 * A fake-indexeddb factory that remembers every connection it opened (`connections`),
 * so a test can act on the adapter's own connection (force-close it, for example).
 */
export function recordingFactory(): { factory: IDBFactory; connections: IDBDatabase[] } {
  const real = new IDBFactory();
  const connections: IDBDatabase[] = [];
  const factory = new Proxy(real, {
    get(target, prop) {
      if (prop === 'open') {
        return (name: string, version?: number) => {
          const request = target.open(name, version);
          request.addEventListener('success', () => connections.push(request.result));
          return request;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { factory, connections };
}

/** Resolves with the database's version, opening it without asking for one (never upgrades). */
export function versionOf(factory: IDBFactory, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = factory.open(name);
    request.onsuccess = () => {
      const version = request.result.version;
      request.result.close();
      resolve(version);
    };
    request.onerror = () => reject(request.error);
  });
}

/** Deletes a database; rejects if the deletion reports `blocked` (someone kept it open). */
export function deleteOrFailIfBlocked(factory: IDBFactory, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = factory.deleteDatabase(name);
    request.onblocked = () => reject(new Error(`deleting ${name} is blocked: a connection was left open`));
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
  });
}
