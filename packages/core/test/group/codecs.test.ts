/**
 * Group codecs and records (docs/protocol.md §12.2–§12.12): round trips (fast-check),
 * strict decoding (version, type, size first, no trailing bytes), the sizes the spec
 * states, corrupted stored records detected, and the spec's tables in step with the code.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isDeadboltError, type UserId } from '@deadbolt/spec';
import { concatBytes } from '../../src/codec/bytes.js';
import { decodeGroupChange, encodeGroupChangeBody, type GroupOp } from '../../src/group/group-change.js';
import { decodeGroupFragment, fragmentPayload, reassemble } from '../../src/group/group-fragment.js';
import { decodeGroupKeyRequest, encodeGroupKeyRequest } from '../../src/group/group-key-request.js';
import { decodeGroupMessage, encodeGroupMessageHeader } from '../../src/group/group-message.js';
import { groupIdHex, type GroupId } from '../../src/group/group-id.js';
import { groupKeys } from '../../src/group/group-records.js';
import { decodeGroupState, encodeGroupState, type GroupMember, type GroupState } from '../../src/group/group-state.js';
import { decodeSenderKeyDistribution, encodeSenderKeyDistribution } from '../../src/group/sender-key-distribution.js';
import { decodeGroupWelcome } from '../../src/group/group-welcome.js';
import { ByteWriter } from '../../src/codec/writer.js';
import { Label, Limits, MessageType } from '../../src/index.js';
import type { DeviceCertificate } from '../../src/protocol/device-certificate.js';
import { createDevice, crypto, groupOf, send, text } from './helpers.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const id = fc.stringMatching(/^[A-Za-z0-9._@:+-]{1,64}$/);
const gid = bytes(32).map((b) => b as GroupId);

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isDeadboltError(e) ? e.code : String(e);
  }
}

describe('round trips', () => {
  test('group message headers and bodies', () => {
    fc.assert(
      fc.property(gid, fc.nat({ max: 0xffffffff }), id, id, fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.uint8Array({ minLength: 48, maxLength: 400 }), bytes(64), (groupId, epoch, u, d, keyId, generation, body, sig) => {
        const header = { groupId, epoch, sender: { userId: u as UserId, deviceId: d as never }, keyId, generation };
        const h = encodeGroupMessageHeader(header);
        const wire = new ByteWriter().fixed(h, h.length).bytes32(body).fixed(sig, 64).finish();
        const m = decodeGroupMessage(wire);
        expect(m.header).toEqual(header);
        expect(m.body).toEqual(body);
        expect(m.signature).toEqual(sig);
        expect(codeOf(() => decodeGroupMessage(concatBytes(wire, Uint8Array.of(0))))).toBe('DECODE_FAILED');
      }),
    );
  });

  test('sender-key distributions and key requests', () => {
    fc.assert(
      fc.property(gid, id, id, fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), bytes(32), bytes(32), (groupId, u, d, keyId, createdEpoch, generation, chainKey, signingKey) => {
        const v = { groupId, sender: { userId: u as UserId, deviceId: d as never }, keyId, createdEpoch, generation, chainKey, signingKey };
        const wire = encodeSenderKeyDistribution(v);
        expect(wire.length).toBeLessThanOrEqual(Limits.maxSenderKeyDistribution);
        expect(decodeSenderKeyDistribution(wire)).toEqual(v);
        expect(decodeGroupKeyRequest(encodeGroupKeyRequest({ groupId, keyId }))).toEqual({ groupId, keyId });
      }),
    );
  });

  test('changes with every kind of operation, and states', async () => {
    const alice = await createDevice('alice', 'phone');
    const member: GroupMember = { userId: 'alice' as UserId, accountKey: alice.account.publicKey, role: 'admin', devices: [alice.certificate] };
    const device = { deviceId: alice.certificate.deviceId, signingKey: alice.certificate.signingKey, identityKey: alice.certificate.identityKey, capabilities: 1, signature: alice.certificate.signature };
    const op = fc.oneof(
      fc.constant<GroupOp>({ type: 'add-member', member }),
      id.map((u): GroupOp => ({ type: 'remove-member', userId: u as UserId })),
      id.map((u): GroupOp => ({ type: 'add-device', userId: u as UserId, device })),
      fc.tuple(id, id).map(([u, d]): GroupOp => ({ type: 'remove-device', userId: u as UserId, deviceId: d as never })),
      id.map((u): GroupOp => ({ type: 'promote', userId: u as UserId })),
      id.map((u): GroupOp => ({ type: 'demote', userId: u as UserId })),
      fc.string({ maxLength: 60 }).map((name): GroupOp => ({ type: 'rename', name })),
    );
    fc.assert(
      fc.property(gid, fc.nat({ max: 0xffffffff }), bytes(32), fc.array(op, { minLength: 1, maxLength: 10 }), bytes(64), (groupId, epoch, parentHash, ops, signature) => {
        const body = { groupId, epoch: epoch || 1, parentHash, signer: alice.address, createdAt: 5, ops };
        const wire = concatBytes(encodeGroupChangeBody(body), signature);
        const c = decodeGroupChange(wire);
        expect({ groupId: c.groupId, epoch: c.epoch, parentHash: c.parentHash, signer: c.signer, createdAt: c.createdAt, ops: c.ops }).toEqual(body);
        expect(c.bytes).toEqual(wire);
        expect(codeOf(() => decodeGroupChange(wire.subarray(0, wire.length - 1)))).toBe('DECODE_FAILED');
      }),
    );
    const state: GroupState = { groupId: new Uint8Array(32) as GroupId, epoch: 3, parentHash: new Uint8Array(32), changeHash: new Uint8Array(32).fill(1), lastRemovalEpoch: 2, name: 'ünïcode ✓', members: [member] };
    expect(decodeGroupState(encodeGroupState(state))).toEqual(state);
  });

  test('fragments: split, shuffled, reassembled; a missing or foreign fragment is noticed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.integer({ min: 50, max: 700 }), (payload, chunk) => {
        const parts = fragmentPayload(crypto, payload, chunk);
        if (parts.length === 1) {
          expect(parts[0]).toBe(payload);
          return;
        }
        const fragments = parts.map(decodeGroupFragment).reverse();
        expect(reassemble(crypto, fragments)).toEqual(payload);
        expect(reassemble(crypto, fragments.slice(1))).toBeUndefined();
        const tampered = fragments.map((f, i) => (i === 0 ? { ...f, chunk: f.chunk.map((b) => b ^ 1) } : f));
        expect(codeOf(() => reassemble(crypto, tampered))).toBe('DECODE_FAILED');
      }),
      { numRuns: 50 },
    );
  });
});

describe('strict decoding', () => {
  test('wrong version, wrong type, oversize input and empty input are refused', () => {
    const skdm = encodeSenderKeyDistribution({ groupId: new Uint8Array(32) as GroupId, sender: { userId: 'a' as UserId, deviceId: 'b' as never }, keyId: 1, createdEpoch: 0, generation: 0, chainKey: new Uint8Array(32), signingKey: new Uint8Array(32) });
    const v2 = skdm.slice();
    v2[0] = 2;
    expect(codeOf(() => decodeSenderKeyDistribution(v2))).toBe('UNSUPPORTED_VERSION');
    const wrongType = skdm.slice();
    wrongType[1] = MessageType.GROUP;
    expect(codeOf(() => decodeSenderKeyDistribution(wrongType))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupMessage(new Uint8Array(Limits.maxGroupMessage + 1)))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupState(new Uint8Array(Limits.maxGroupState + 1)))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupChange(new Uint8Array(Limits.maxGroupChange + 1)))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupWelcome(new Uint8Array(Limits.maxGroupWelcome + 1)))).toBe('DECODE_FAILED');
    for (const decode of [decodeGroupMessage, decodeGroupState, decodeGroupChange, decodeGroupWelcome, decodeSenderKeyDistribution, decodeGroupKeyRequest, decodeGroupFragment]) {
      expect(codeOf(() => decode(new Uint8Array(0)))).toBe('DECODE_FAILED');
    }
  });

  test('members and devices must be strictly sorted, with 1..6 devices', async () => {
    const alice = await createDevice('alice', 'phone');
    const m = (userId: string, devices: DeviceCertificate[]): GroupMember => ({ userId: userId as UserId, accountKey: alice.account.publicKey, role: 'member', devices });
    const base: GroupState = { groupId: new Uint8Array(32) as GroupId, epoch: 0, parentHash: new Uint8Array(32), changeHash: new Uint8Array(32), lastRemovalEpoch: 0, name: '', members: [] };
    const dev = (d: string): DeviceCertificate => ({ ...alice.certificate, deviceId: d as never });
    expect(codeOf(() => decodeGroupState(encodeGroupState({ ...base, members: [m('b', [dev('x')]), m('a', [dev('x')])] })))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupState(encodeGroupState({ ...base, members: [m('a', [dev('x')]), m('a', [dev('y')])] })))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupState(encodeGroupState({ ...base, members: [m('a', [dev('y'), dev('x')])] })))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupState(encodeGroupState({ ...base, members: [m('a', ['1', '2', '3', '4', '5', '6', '7'].map(dev))] })))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodeGroupState(encodeGroupState({ ...base, members: [m('a', ['1', '2', '3', '4', '5', '6'].map(dev))] })))).toBe('ok');
  });
});

describe('sizes stated by the spec (§12.12)', () => {
  test('a full group state, the largest message and distribution fit their limits', () => {
    const k = new Uint8Array(32);
    const member = (i: number): GroupMember => ({
      userId: `${String(i).padStart(4, '0')}`.padEnd(64, 'u') as UserId,
      accountKey: k as never,
      role: 'member',
      devices: Array.from({ length: Limits.maxGroupDevicesPerMember }, (_, j) => ({ userId: '' as UserId, deviceId: `${j}`.padEnd(64, 'd') as never, accountKey: k as never, signingKey: k as never, identityKey: k as never, capabilities: 1, signature: new Uint8Array(64) })),
    });
    const state: GroupState = { groupId: k as GroupId, epoch: 1, parentHash: k, changeHash: k, lastRemovalEpoch: 0, name: 'n'.repeat(255), members: Array.from({ length: Limits.maxGroupMembers }, (_, i) => member(i)) };
    const encoded = encodeGroupState(state);
    expect(encoded.length).toBe(1_263_363);
    expect(encoded.length).toBeLessThanOrEqual(Limits.maxGroupState);
    expect(decodeGroupState(encoded).members).toHaveLength(Limits.maxGroupMembers);
  });

  test('the largest plaintext makes a group message within its limit', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const big = new Uint8Array(Limits.maxPlaintext).fill(7);
    const m = await send(net, alice, groupId, '');
    await bob.groups.decrypt(m);
    const out = await alice.groups.encrypt(groupId, big);
    // With the longest ids (64 characters each) the header grows from 58 to 176 bytes.
    const header = decodeGroupMessage(out.message).headerBytes.length;
    expect(header).toBe(58);
    expect(out.message.length - header + 176).toBe(270_628);
    expect(270_628).toBeLessThanOrEqual(Limits.maxGroupMessage);
    expect((await bob.groups.decrypt(out.message)).plaintext).toEqual(big);
  });
});

describe('stored records (SECURITY.md D29)', () => {
  test('a corrupted or truncated group record is reported as CORRUPTED_RECORD and never used', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const m1 = await send(net, alice, groupId, 'one');
    const g = groupIdHex(groupId);
    const cases: { key: string[]; storage: typeof alice.storage; run: () => Promise<unknown> }[] = [
      { key: groupKeys.sender(g, alice.address), storage: bob.storage, run: () => bob.groups.decrypt(m1) },
      { key: groupKeys.meta(g), storage: bob.storage, run: () => bob.groups.decrypt(m1) },
      { key: groupKeys.own(g), storage: alice.storage, run: () => alice.groups.encrypt(groupId, text('x')) },
      { key: groupKeys.head(g), storage: bob.storage, run: () => bob.groups.state(groupId) },
      { key: groupKeys.base(g), storage: alice.storage, run: () => alice.groups.rename(groupId, 'r') },
    ];
    for (const { key, storage, run } of cases) {
      const good = (await storage.get(key))!;
      for (const bad of [flip(good, 3), good.subarray(0, good.length - 1), flip(good, good.length - 1)]) {
        await storage.batch([{ type: 'put', key, value: bad }]);
        let caught: unknown;
        await run().catch((e) => (caught = e));
        expect(isDeadboltError(caught, 'CORRUPTED_RECORD'), key.join('/')).toBe(true);
      }
      await storage.batch([{ type: 'put', key, value: good }]);
    }
    expect(new TextDecoder().decode((await bob.groups.decrypt(m1)).plaintext)).toBe('one');
  });
});

function flip(b: Uint8Array, at: number): Uint8Array {
  const out = b.slice();
  out[at]! ^= 0x01;
  return out;
}

describe('docs/protocol.md matches the code', () => {
  const spec = readFileSync(new URL('../../../../docs/protocol.md', import.meta.url), 'utf8');
  const section = (title: string): string => {
    const start = spec.indexOf(title);
    expect(start, title).toBeGreaterThan(-1);
    const next = spec.indexOf('\n## ', start + title.length);
    return spec.slice(start, next === -1 ? undefined : next);
  };

  test('§12.12 limits', () => {
    const s = section('## 12.12');
    const row = (label: string): number => {
      const m = s.match(new RegExp(`^\\| ${label}[^|]* \\| ([^|]+) \\|`, 'm'));
      expect(m, label).not.toBeNull();
      return Number(m![1]!.trim().replace(/,/g, '').split(' ')[0]);
    };
    expect(row('members per group')).toBe(Limits.maxGroupMembers);
    expect(row('devices per member')).toBe(Limits.maxGroupDevicesPerMember);
    expect(row('operations per change')).toBe(Limits.maxGroupOpsPerChange);
    expect(row('GroupState encoding')).toBe(Limits.maxGroupState);
    expect(row('GroupChange encoding')).toBe(Limits.maxGroupChange);
    expect(row('GroupWelcome encoding')).toBe(Limits.maxGroupWelcome);
    expect(row('GroupMessage encoding')).toBe(Limits.maxGroupMessage);
    expect(row('SenderKeyDistribution encoding')).toBe(Limits.maxSenderKeyDistribution);
    expect(row('forward skip per group message')).toBe(Limits.maxGroupForwardSkip);
    expect(row('stored skipped keys per sender device')).toBe(Limits.maxGroupSkippedKeys);
    expect(row('sender keys kept per sender device')).toBe(Limits.maxGroupSenderKeysPerDevice);
    expect(row('messages per sender key')).toBe(Limits.maxGroupMessagesPerKey);
    expect(row('sender key age')).toBe(Limits.maxGroupKeyAgeMs);
    expect(row('reorganisation window')).toBe(Limits.maxGroupReorgDepth);
    expect(row('changes in a group')).toBe(Limits.maxGroupLogChanges);
    expect(row('pending changes per group')).toBe(Limits.maxGroupPendingChanges);
    expect(row('held group messages per group')).toBe(Limits.maxGroupHeldMessages);
    expect(row('fragment chunk')).toBe(Limits.maxGroupFragmentChunk);
    expect(row('fragments per payload')).toBe(Limits.maxGroupFragments);
    expect(row('group inbox entries')).toBe(Limits.maxGroupInbox);
  });
});
