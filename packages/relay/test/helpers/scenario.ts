/**
 * The plumbing every scenario file shares: relays started and sockets opened by a test are
 * closed after it (the sockets first, then the relays), so no test leaks into the next.
 */
import { afterEach } from 'vitest';
import { connectWs, WsClient } from './clients.js';
import type { TestDevice } from './devices.js';
import { startRelay, type TestRelay } from './relay.js';

/** What `startRelay` takes. */
export type RelayStartOptions = Parameters<typeof startRelay>[0];

export interface Scenario {
  /** Starts a relay with the file's defaults overridden by `options`. */
  relay(options?: RelayStartOptions): Promise<TestRelay>;
  /** A WebSocket authenticated as `device` (its first AUTH registers it). */
  connect(r: TestRelay, device: TestDevice): Promise<WsClient>;
  /** A WebSocket that stops after HELLO: it has not authenticated. */
  socket(r: TestRelay): Promise<WsClient>;
  /** Closes `client`, opened some other way, after the test too. */
  track(client: WsClient): WsClient;
  /** Stops `r` now, within the test (the cleanup does not stop it again). */
  stop(r: TestRelay): Promise<void>;
}

/**
 * Registers the after-each cleanup for this file and returns how its tests start relays
 * and open sockets. Call it once, at the top level of a scenario file.
 *
 * @param defaults - options of every relay of the file (e.g. `{ sqlite: true }`)
 *
 * @example
 * ```ts
 * const { relay, connect } = useScenario({ sqlite: true });
 *
 * it('…', async () => {
 *   const r = await relay();
 *   const a = await connect(r, await createDevice('alice', 'phone'));
 * });
 * ```
 */
export function useScenario(defaults: RelayStartOptions = {}): Scenario {
  const running: TestRelay[] = [];
  const clients: WsClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });
  const track = (client: WsClient): WsClient => {
    clients.push(client);
    return client;
  };
  return {
    async relay(options = {}) {
      const r = await startRelay({ ...defaults, ...options });
      running.push(r);
      return r;
    },
    connect: async (r, device) => track((await connectWs(r.relay.wsUrl, device)).client),
    socket: async (r) => track(await WsClient.connect(r.relay.wsUrl)),
    track,
    async stop(r) {
      const at = running.indexOf(r);
      if (at >= 0) running.splice(at, 1);
      await r.stop();
    },
  };
}
