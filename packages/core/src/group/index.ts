/**
 * `@deadbolt/core/group`: the group engine (docs/protocol.md §12), sender-key groups whose
 * membership members decide. The client (`createClient`, docs/groups.md) wraps this layer
 * and loads it only on first group use; import it directly for advanced use and tests.
 * It is a subpath of its own so that an application's bundler can leave it out of the
 * initial bundle.
 *
 * @example
 * ```ts
 * import { createGroupEngine, createGroupManager } from '@deadbolt/core/group';
 * const engine = createGroupEngine({ groups: createGroupManager({ storage }), sendPairwise });
 * ```
 *
 * @module
 */
export { createGroupEngine, type GroupEngine, type GroupEngineOptions, type GroupEvent, type GroupSendResult } from './group-engine.js';
export {
  createGroupManager,
  type GroupChangeOutcome,
  type GroupChangeResult,
  type GroupChanges,
  type GroupCommitOptions,
  type GroupCreateParams,
  type GroupDecryptOptions,
  type GroupDecryptResult,
  type GroupEncryptOptions,
  type GroupDelivery,
  type GroupEncryptResult,
  type GroupManager,
  type GroupManagerOptions,
  type NewGroupMember,
} from './group-manager.js';
export { groupId, groupIdHex, type GroupId } from './group-id.js';
export { decodeGroupChange, OpType, type GroupOp, type SignedGroupChange } from './group-change.js';
export { decodeGroupState, encodeGroupState, findMember, groupDevices, hasGroupDevice, type GroupDeviceEntry, type GroupMember, type GroupRole, type GroupState } from './group-state.js';
export type { InstallOutcome } from './sender-key.js';
export { decodeGroupMessage, type GroupMessage, type GroupMessageHeader } from './group-message.js';
export { decodeSenderKeyDistribution, type SenderKeyDistribution } from './sender-key-distribution.js';
export { isRetryable } from './group-errors.js';
