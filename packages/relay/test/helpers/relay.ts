/**
 * Starting relays for tests: a real relay on loopback, over real SQLite in a temp dir (or
 * memory), with a movable clock and captured logs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRelay, createMemoryRelayStore, createSqliteRelayStore, type Relay, type RelayOptions, type RelayStore } from '../../src/index.js';
import type { RelayLogFields, RelayLogLevel } from '../../src/logger.js';
import { deadline } from './clients.js';

export interface LogEntry {
  readonly level: RelayLogLevel;
  readonly event: string;
  readonly fields: RelayLogFields;
}

/** Real time plus an offset the test can move forward. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function createTestClock(): TestClock {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms) => void (offset += ms) };
}

export interface TestRelay {
  readonly relay: Relay;
  readonly store: RelayStore;
  readonly clock: TestClock;
  readonly logs: LogEntry[];
  readonly dir: string | undefined;
  readonly dbPath: string | undefined;
  /** Resolves once `count` log entries with this event have been written (event-driven). */
  untilLogged(event: string, count?: number, timeoutMs?: number): Promise<void>;
  /** Closes the relay (and its store) and removes the temp dir. */
  stop(): Promise<void>;
}

export async function startRelay(options: Omit<RelayOptions, 'logger' | 'now'> & { sqlite?: boolean } = {}): Promise<TestRelay> {
  const { sqlite, ...rest } = options;
  const clock = createTestClock();
  const logs: LogEntry[] = [];
  const listeners = new Set<() => void>();
  let dir: string | undefined;
  let dbPath: string | undefined;
  let store = rest.store;
  if (store === undefined) {
    if (sqlite) {
      dir = await mkdtemp(join(tmpdir(), 'deadbolt-relay-'));
      dbPath = join(dir, 'relay.db');
      store = createSqliteRelayStore({ path: dbPath });
    } else store = createMemoryRelayStore();
  }
  const relay = await createRelay({
    ...rest,
    store,
    now: clock.now,
    logger: (level, event, fields) => {
      logs.push({ level, event, fields });
      for (const l of [...listeners]) l();
    },
  });
  return {
    relay,
    store,
    clock,
    logs,
    dir,
    dbPath,
    untilLogged(event, count = 1, timeoutMs = 10_000) {
      const enough = () => logs.filter((l) => l.event === event).length >= count;
      if (enough()) return Promise.resolve();
      return deadline(
        new Promise<void>((resolve) => {
          const l = () => {
            if (!enough()) return;
            listeners.delete(l);
            resolve();
          };
          listeners.add(l);
        }),
        timeoutMs,
        `${count} "${event}" log entries`,
      );
    },
    async stop() {
      await relay.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
