/**
 * Property (fast-check): concurrent changes from several admins converge identically on
 * every member, whatever the delivery order (docs/protocol.md §12.5), also after
 * each admin rebases its orphaned changes.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { UserId } from '@deadbolt/spec';
import { toHex } from '../../src/codec/bytes.js';
import { groupChangeHash, type GroupOp, type SignedGroupChange } from '../../src/group/group-change.js';
import { headPath } from '../../src/group/group-log.js';
import { groupStateHash } from '../../src/group/group-state.js';
import { groupIdHex, type GroupId } from '../../src/group/group-id.js';
import type { DeviceCertificate } from '../../src/protocol/device-certificate.js';
import { certify, createDevice, groupOf, newAccount, type Device } from './helpers.js';

type Step = { readonly kind: 'rename' | 'remove' | 'promote' | 'demote' | 'add'; readonly target: number };

const step: fc.Arbitrary<Step> = fc.record({ kind: fc.constantFrom('rename', 'remove', 'promote', 'demote', 'add'), target: fc.nat(5) });

describe('convergence', () => {
  test('any concurrent changes by three admins, delivered in any order, give every member the same head', async () => {
    const admins = await Promise.all(['a1', 'a2', 'a3'].map((u) => createDevice(u, 'd')));
    const observers = await Promise.all(['o1', 'o2'].map((u) => createDevice(u, 'd')));
    const everyone = [...admins, ...observers];
    const passive: DeviceCertificate[] = [];
    const spare: DeviceCertificate[] = [];
    for (let i = 0; i < 6; i++) passive.push((await certify(`p${i}`, 'd', await newAccount())).certificate);
    for (let i = 0; i < 6; i++) spare.push((await certify(`s${i}`, 'd', await newAccount())).certificate);

    const opFor = (s: Step, admin: number, k: number): GroupOp => {
      const user = `p${s.target}` as UserId;
      switch (s.kind) {
        case 'rename':
          return { type: 'rename', name: `a${admin}-${k}` };
        case 'remove':
          return { type: 'remove-member', userId: user };
        case 'promote':
          return { type: 'promote', userId: user };
        case 'demote':
          return { type: 'demote', userId: user };
        case 'add': {
          const c = spare[s.target]!;
          return { type: 'add-member', member: { userId: c.userId, accountKey: c.accountKey, role: 'member', devices: [c] } };
        }
      }
    };

    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(step, { minLength: 1, maxLength: 3 }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.array(fc.nat(), { minLength: 20, maxLength: 20 }), { minLength: 10, maxLength: 10 }),
        async (plans, orders) => {
          const [creator, ...rest] = admins as [Device, Device, Device];
          const { groupId, net } = await groupOf(creator, [...rest, ...observers]);
          for (const a of rest) await net.deliver(creator, (await creator.groups.promote(groupId, a.address.userId)).deliveries);
          const promoted = await creator.groups.change(groupId, passive.map((c) => ({ type: 'add-member', member: { userId: c.userId, accountKey: c.accountKey, role: 'member', devices: [c] } }) as GroupOp));
          await net.deliver(creator, promoted.deliveries);

          // Round 1: each admin changes its own head, unaware of the others.
          const made: { by: Device; change: SignedGroupChange }[] = [];
          for (let i = 0; i < admins.length; i++) {
            const admin = admins[i]!;
            let k = 0;
            for (const s of plans[i]!) {
              const op = opFor(s, i, k++);
              if (!(await admin.groups.canApply(groupId, [op]))) continue;
              made.push({ by: admin, change: (await admin.groups.change(groupId, [op])).change });
            }
          }
          await deliverAll(everyone, made, orders, 0);
          const first = await heads(everyone, groupId);
          expect(new Set(first).size).toBe(1);

          // Round 2: each admin rebases what it lost, concurrently; deliver in other orders.
          const rebased: { by: Device; change: SignedGroupChange }[] = [];
          const onHead = await headChangeHashes(admins[0]!, groupId);
          for (const admin of admins) {
            const lost = made.filter((m) => m.by === admin && !onHead.has(toHex(m.change.bytes)));
            const keep: GroupOp[] = [];
            for (const m of lost) for (const op of m.change.ops) if (await admin.groups.canApply(groupId, [...keep, op])) keep.push(op);
            if (keep.length > 0) rebased.push({ by: admin, change: (await admin.groups.change(groupId, keep)).change });
          }
          await deliverAll(everyone, rebased, orders, 5);
          const second = await heads(everyone, groupId);
          expect(new Set(second).size).toBe(1);
        },
      ),
      { numRuns: 20 },
    );
  });
});

/** Delivers every change to every device (its author included, as a duplicate) in a per-device order. */
async function deliverAll(devices: readonly Device[], made: readonly { by: Device; change: SignedGroupChange }[], orders: readonly (readonly number[])[], salt: number): Promise<void> {
  for (let d = 0; d < devices.length; d++) {
    const device = devices[d]!;
    const order = orders[(d + salt) % orders.length]!;
    const sorted = made.map((m, i) => ({ m, key: order[i % order.length]! * 100 + i })).sort((x, y) => x.key - y.key);
    for (const { m } of sorted) await device.groups.processChange(m.by.certificate, m.change.bytes);
  }
}

async function heads(devices: readonly Device[], groupId: GroupId): Promise<string[]> {
  return Promise.all(devices.map(async (d) => toHex((await d.groups.store.meta(groupIdHex(groupId)))!.stateHash)));
}

/** The encodings of the changes on a device's head chain (§12.5). */
async function headChangeHashes(d: Device, groupId: GroupId): Promise<Set<string>> {
  const gid = groupIdHex(groupId);
  const base = (await d.groups.store.base(gid))!;
  const entries = (await d.groups.store.changes(gid)).map((c) => ({ change: c.value.change, changeHash: groupChangeHash(d.groups.crypto, c.value.change), stateHash: c.value.stateHash }));
  const path = headPath({ base: base.state, baseHash: groupStateHash(d.groups.crypto, base.bytes), entries });
  return new Set(path.map((e) => toHex(e.change.bytes)));
}
