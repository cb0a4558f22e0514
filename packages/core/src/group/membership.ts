/**
 * Applying a change to a state: validation and authorization (docs/protocol.md
 * §12.4). Pure: a state and a signed change in, the next state out, or a
 * `ProtocolError` naming the rule that failed. Nothing else decides membership: the relay
 * never sees a change, and every member checks every change it applies (SECURITY.md C18).
 *
 * The rules, with `U` the signer's user in the state being built:
 *
 * | op | allowed when | requires |
 * |---|---|---|
 * | add-member m | U is admin | m new; room; every certificate valid under m's account key |
 * | remove-member u | U is admin, or u = U (leaving) | u is a member |
 * | add-device u, d | U is admin, or u = U | u a member; d new; room; d certified by u's account key |
 * | remove-device u, id | U is admin, or u = U | u keeps another device |
 * | promote u | U is admin | u is a member, not admin |
 * | demote u | U is admin | u is admin and another admin remains |
 * | rename | U is admin | — |
 *
 * The signer must still be a member device before each op, so nothing follows its own
 * removal. If the last admin leaves, the member with the smallest user id becomes admin.
 *
 * @module
 */
import type { Ed25519PublicKey, UserId } from '@deadbolt/spec';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Limits } from '../protocol/constants.js';
import { verifyDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';
import { changeRejected } from './group-errors.js';
import { genesisGroupId, verifyGroupChangeSignature, type SignedGroupChange } from './group-change.js';
import { compareIds, deviceCertificateOf, findDevice, HASH_LENGTH, ZERO_HASH, type GroupMember, type GroupState } from './group-state.js';

/** Options of {@link applyChange} and {@link applyGenesis}. */
export interface ApplyOptions {
  /**
   * Verify the change signature and every certificate it adds. `false` only when replaying
   * changes this device already verified and stored itself (§12.5).
   */
  readonly verify: boolean;
}

interface WorkingMember {
  userId: UserId;
  accountKey: Ed25519PublicKey;
  role: 'member' | 'admin';
  devices: DeviceCertificate[];
}

function indexOfMember(members: readonly { userId: string }[], userId: string): { found: boolean; index: number } {
  let lo = 0;
  let hi = members.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareIds((members[mid] as { userId: string }).userId, userId);
    if (c === 0) return { found: true, index: mid };
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return { found: false, index: lo };
}

async function certified(crypto: CryptoProvider, cert: DeviceCertificate, verify: boolean): Promise<void> {
  if (!verify) return;
  try {
    await verifyDeviceCertificate(crypto, cert);
  } catch {
    throw changeRejected('device certificate not signed by the member account key');
  }
}

async function checkMemberEntry(crypto: CryptoProvider, m: GroupMember, verify: boolean): Promise<void> {
  for (const d of m.devices) {
    // The decoder builds certificates from the member's own fields; re-check for callers
    // that construct members in memory.
    if (d.userId !== m.userId || !equalBytes(d.accountKey, m.accountKey)) throw changeRejected('device of another account');
    await certified(crypto, d, verify);
  }
}

/**
 * The state of a genesis change (§12.3.3, §12.4). Throws `BAD_SIGNATURE` naming the rule
 * that failed.
 *
 * @example
 * ```ts
 * const state = await applyGenesis(crypto, decodeGroupChange(bytes), changeHash, { verify: true });
 * ```
 */
export async function applyGenesis(crypto: CryptoProvider, change: SignedGroupChange, changeHash: Uint8Array, options: ApplyOptions): Promise<GroupState> {
  const op = change.ops[0];
  if (change.epoch !== 0 || !equalBytes(change.parentHash, ZERO_HASH) || change.ops.length !== 1 || op?.type !== 'create') {
    throw changeRejected('not a genesis');
  }
  if (!equalBytes(genesisGroupId(crypto, change), change.groupId)) throw changeRejected('group id does not match the genesis');
  const signerMember = op.members[indexOfMember(op.members, change.signer.userId).index];
  const signerDevice = signerMember?.userId === change.signer.userId ? signerMember.devices.find((d) => d.deviceId === change.signer.deviceId) : undefined;
  if (!signerMember || !signerDevice || signerMember.role !== 'admin') throw changeRejected('genesis signer is not an admin device');
  if (options.verify) {
    if (!(await verifyGroupChangeSignature(crypto, signerDevice.signingKey, change))) throw changeRejected('signature');
    for (const m of op.members) await checkMemberEntry(crypto, m, true);
  }
  return {
    groupId: change.groupId,
    epoch: 0,
    parentHash: new Uint8Array(HASH_LENGTH),
    changeHash,
    lastRemovalEpoch: 0,
    name: op.name,
    members: op.members,
  };
}

/**
 * The state change `change` makes from `parent` (§12.4), whose hash is `parentHash`.
 * Throws `BAD_SIGNATURE` naming the rule that failed; never changes `parent`.
 *
 * @example
 * ```ts
 * const next = await applyChange(crypto, head, headHash, change, changeHash, { verify: true });
 * ```
 */
export async function applyChange(
  crypto: CryptoProvider,
  parent: GroupState,
  parentHash: Uint8Array,
  change: SignedGroupChange,
  changeHash: Uint8Array,
  options: ApplyOptions,
): Promise<GroupState> {
  if (!equalBytes(change.groupId, parent.groupId)) throw changeRejected('another group');
  if (change.epoch !== parent.epoch + 1) throw changeRejected('epoch is not the parent epoch + 1');
  if (!equalBytes(change.parentHash, parentHash)) throw changeRejected('parent hash');
  const signerDevice = findDevice(parent, change.signer.userId, change.signer.deviceId);
  if (!signerDevice) throw changeRejected('signer is not a device of the group');
  if (options.verify && !(await verifyGroupChangeSignature(crypto, signerDevice.signingKey, change))) throw changeRejected('signature');

  const members: WorkingMember[] = parent.members.map((m) => ({ ...m, devices: m.devices.slice() }));
  let name = parent.name;
  let removed = false;
  const signerUser = change.signer.userId;

  for (const op of change.ops) {
    // The signer must still be this device of a member (§12.4 step 3).
    const me = indexOfMember(members, signerUser);
    const signerMember = me.found ? members[me.index] : undefined;
    const stillThere = signerMember?.devices.find((d) => d.deviceId === change.signer.deviceId);
    if (!signerMember || !stillThere || !equalBytes(stillThere.signingKey, signerDevice.signingKey)) throw changeRejected('signer no longer a member');
    const admin = signerMember.role === 'admin';

    switch (op.type) {
      case 'create':
        throw changeRejected('CREATE outside a genesis');
      case 'add-member': {
        if (!admin) throw changeRejected('only admins add members');
        const at = indexOfMember(members, op.member.userId);
        if (at.found) throw changeRejected('already a member');
        if (members.length >= Limits.maxGroupMembers) throw changeRejected('group full');
        await checkMemberEntry(crypto, op.member, options.verify);
        members.splice(at.index, 0, { ...op.member, devices: op.member.devices.slice() });
        break;
      }
      case 'remove-member': {
        if (!admin && op.userId !== signerUser) throw changeRejected('only admins remove other members');
        const at = indexOfMember(members, op.userId);
        if (!at.found) throw changeRejected('not a member');
        members.splice(at.index, 1);
        removed = true;
        break;
      }
      case 'add-device': {
        if (!admin && op.userId !== signerUser) throw changeRejected('only admins add devices of other members');
        const at = indexOfMember(members, op.userId);
        const m = at.found ? members[at.index] : undefined;
        if (!m) throw changeRejected('not a member');
        if (m.devices.some((d) => d.deviceId === op.device.deviceId)) throw changeRejected('device already present');
        if (m.devices.length >= Limits.maxGroupDevicesPerMember) throw changeRejected('too many devices');
        const cert = deviceCertificateOf(op.device, m.userId, m.accountKey);
        await certified(crypto, cert, options.verify);
        const pos = m.devices.findIndex((d) => compareIds(d.deviceId, cert.deviceId) > 0);
        m.devices.splice(pos === -1 ? m.devices.length : pos, 0, cert);
        break;
      }
      case 'remove-device': {
        if (!admin && op.userId !== signerUser) throw changeRejected('only admins remove devices of other members');
        const at = indexOfMember(members, op.userId);
        const m = at.found ? members[at.index] : undefined;
        const pos = m ? m.devices.findIndex((d) => d.deviceId === op.deviceId) : -1;
        if (!m || pos === -1) throw changeRejected('no such device');
        if (m.devices.length === 1) throw changeRejected('last device: remove the member');
        m.devices.splice(pos, 1);
        removed = true;
        break;
      }
      case 'promote': {
        if (!admin) throw changeRejected('only admins promote');
        const at = indexOfMember(members, op.userId);
        const m = at.found ? members[at.index] : undefined;
        if (!m || m.role === 'admin') throw changeRejected('not a non-admin member');
        m.role = 'admin';
        break;
      }
      case 'demote': {
        if (!admin) throw changeRejected('only admins demote');
        const at = indexOfMember(members, op.userId);
        const m = at.found ? members[at.index] : undefined;
        if (!m || m.role !== 'admin') throw changeRejected('not an admin');
        if (!members.some((x) => x !== m && x.role === 'admin')) throw changeRejected('last admin');
        m.role = 'member';
        break;
      }
      case 'rename':
        if (!admin) throw changeRejected('only admins rename');
        name = op.name;
        break;
    }
  }
  // §12.4 step 4: a group with members always has an admin.
  const first = members[0];
  if (first && !members.some((m) => m.role === 'admin')) first.role = 'admin';
  return {
    groupId: parent.groupId,
    epoch: change.epoch,
    parentHash: change.parentHash,
    changeHash,
    lastRemovalEpoch: removed ? change.epoch : parent.lastRemovalEpoch,
    name,
    members,
  };
}
