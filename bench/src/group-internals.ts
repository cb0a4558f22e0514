/**
 * The group engine of `@deadbolt/core` (docs/protocol.md §12), from its `@deadbolt/core/group`
 * subpath: every import of it by the group benchmark is in this one file.
 *
 * @module
 */
export { createGroupEngine, createGroupManager, decodeGroupMessage, groupIdHex } from '@deadbolt/core/group';
export type { GroupEngine, GroupId, GroupManager } from '@deadbolt/core/group';

