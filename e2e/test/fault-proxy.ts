/**
 * Fault-injecting proxies between clients and the relay (SECURITY.md E33): they drop,
 * duplicate and reorder traffic, from a seeded PRNG so a failure reproduces.
 *
 * - WebSocket: per frame, in both directions: drop it (and then cut the connection, as a
 *   real network loss would surface), send it twice, or hold it back behind the next one.
 * - HTTP: per request: drop it (the socket is destroyed, no answer), forward it twice
 *   (the client sees the second answer), or delay it (so requests overtake each other).
 *
 * Every loop and timer is bounded; `close()` ends everything.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type RawData } from 'ws';

export interface FaultRates {
  /** Probability of dropping a frame or request. */
  readonly drop: number;
  /** Probability of duplicating one. */
  readonly duplicate: number;
  /** Probability of holding one back (reordering). */
  readonly reorder: number;
}

export interface FaultStats {
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  cut: number;
}

export interface FaultProxy {
  /** The proxy's base URL (http://127.0.0.1:PORT); WebSocket clients use `${url}/v1/ws` with ws:. */
  readonly url: string;
  readonly wsUrl: string;
  readonly stats: FaultStats;
  /** Changes where traffic goes (after a relay restart on another port). */
  retarget(relayUrl: string): void;
  /** Stops injecting faults (for a clean final phase). */
  calm(): void;
  close(): Promise<void>;
}

/** mulberry32: small, seeded, good enough to schedule faults. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Observes every WebSocket frame: 'up' is client to relay, 'down' relay to client. */
export type FrameTap = (direction: 'up' | 'down', data: Uint8Array) => void;

export async function startFaultProxy(relayUrl: string, rates: FaultRates, seed: number, tap?: FrameTap): Promise<FaultProxy> {
  const rand = prng(seed);
  let target = new URL(relayUrl);
  let active = true;
  const stats: FaultStats = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, cut: 0 };
  const sockets = new Set<WebSocket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const roll = (p: number): boolean => active && rand() < p;

  // --- HTTP ------------------------------------------------------------------------------
  const forward = (req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const out = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
            resolve({ status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void (async () => {
        if (roll(rates.drop)) {
          stats.dropped++;
          req.socket.destroy();
          return;
        }
        const send = async (): Promise<void> => {
          try {
            if (roll(rates.duplicate)) {
              stats.duplicated++;
              await forward(req, body).catch(() => undefined);
            }
            const answer = await forward(req, body);
            stats.forwarded++;
            res.writeHead(answer.status, answer.headers);
            res.end(answer.body);
          } catch {
            req.socket.destroy();
          }
        };
        if (roll(rates.reorder)) {
          stats.reordered++;
          later(1 + Math.floor(rand() * 40), () => void send());
        } else await send();
      })();
    });
  });

  // --- WebSocket ---------------------------------------------------------------------------
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (client) => {
      const upstream = new WebSocket(`ws://${target.host}${req.url ?? '/v1/ws'}`, { maxPayload: 4 * 1024 * 1024 });
      sockets.add(client);
      sockets.add(upstream);
      const pendingToUpstream: RawData[] = [];
      const cut = (): void => {
        stats.cut++;
        client.terminate();
        upstream.terminate();
      };
      upstream.on('open', () => {
        for (const m of pendingToUpstream.splice(0)) upstream.send(m);
      });
      const pipe = (from: WebSocket, to: WebSocket, queue?: RawData[]): void => {
        let held: RawData | undefined;
        from.on('message', (data: RawData) => {
          const deliver = (d: RawData): void => {
            if (to.readyState === WebSocket.OPEN) to.send(d);
            else if (queue && to.readyState === WebSocket.CONNECTING) queue.push(d);
          };
          if (roll(rates.drop)) {
            stats.dropped++;
            later(20, cut); // a lost frame surfaces as a broken connection
            return;
          }
          stats.forwarded++;
          if (roll(rates.duplicate)) {
            stats.duplicated++;
            deliver(data);
          }
          if (held === undefined && roll(rates.reorder)) {
            stats.reordered++;
            held = data;
            later(30, () => {
              if (held !== undefined) deliver(held);
              held = undefined;
            });
            return;
          }
          deliver(data);
          if (held !== undefined) {
            deliver(held);
            held = undefined;
          }
        });
      };
      if (tap) {
        const bytesOf = (d: RawData): Uint8Array => (Array.isArray(d) ? Buffer.concat(d) : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d));
        client.on('message', (d: RawData) => tap('up', bytesOf(d)));
        upstream.on('message', (d: RawData) => tap('down', bytesOf(d)));
      }
      pipe(client, upstream, pendingToUpstream);
      pipe(upstream, client);
      const closeBoth = (): void => {
        sockets.delete(client);
        sockets.delete(upstream);
        client.terminate();
        upstream.terminate();
      };
      client.on('close', closeBoth);
      upstream.on('close', closeBoth);
      client.on('error', closeBoth);
      upstream.on('error', closeBoth);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    stats,
    retarget(url: string) {
      target = new URL(url);
    },
    calm() {
      active = false;
    },
    async close() {
      active = false;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
