/**
 * Mail for devices that are not connected, for the relay-memory figure of
 * `pnpm bench:stack`: `devices` devices register (and publish prekeys), disconnect, and
 * `senders` other devices queue `total` frames for them through the WebSocket transport,
 * one SEND per round carrying one frame for each offline device.
 *
 * The frames are random bytes of a real message's frame length: the relay never reads a
 * frame, so what it holds is the same as for encrypted messages, and skipping 100,000
 * encryptions keeps the run short. Each sender queues `total / (senders × devices)` frames
 * per mailbox, inside the relay's default mailbox quotas (1,000 per sender, 10,000 per
 * mailbox, 64 MiB).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { conformanceDevice } from '@deadbolt/relay/testing';
import type { Address, TransportAdapter } from '@deadbolt/spec';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import { withTimeout } from './stack-ipc.js';

export interface OfflinePlan {
  readonly total: number;
  readonly devices: number;
  readonly senders: number;
  readonly frameBytes: number;
}

const transportTo = (wsUrl: string): TransportAdapter => createWebSocketTransport({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });

/** Queues `plan.total` frames for `plan.devices` offline devices; resolves when the relay stored them all. */
export async function queueForOffline(wsUrl: string, plan: OfflinePlan): Promise<void> {
  const rounds = plan.total / (plan.senders * plan.devices);
  if (!Number.isInteger(rounds)) throw new Error('bench:stack: total must be a multiple of senders × devices');

  const offline: Address[] = [];
  for (let i = 0; i < plan.devices; i += 10) {
    await withTimeout(
      Promise.all(
        Array.from({ length: Math.min(10, plan.devices - i) }, async (_, k) => {
          const d = await conformanceDevice(`offline${i + k}`, 'phone');
          const t = transportTo(wsUrl);
          await t.connect(d.auth); // registers the device
          await t.publishPrekeys(d.upload);
          await t.close();
          offline.push(d.address);
        }),
      ),
      30_000,
      'registering the offline devices',
    );
  }

  const frames = Array.from({ length: plan.devices }, () => new Uint8Array(randomBytes(plan.frameBytes)));
  const sender = async (s: number): Promise<void> => {
    const d = await conformanceDevice(`flooder${s}`, 'd');
    const t = transportTo(wsUrl);
    await t.connect(d.auth);
    try {
      for (let r = 0; r < rounds; r++) await t.send(offline.map((to, i) => ({ to, frame: frames[i]! })));
    } finally {
      await t.close();
    }
  };
  await withTimeout(Promise.all(Array.from({ length: plan.senders }, (_, s) => sender(s))), 120_000, `queueing ${plan.total} messages`);
}
