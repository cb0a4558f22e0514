/**
 * The group layer of `@deadbolt/core` (docs/protocol.md §12), which its public entry point
 * does not export yet (packages/core/src/group/index.ts: "not yet re-exported"). The group
 * benchmark reaches it by relative path into the workspace source; every such import is in
 * this one file, so a refactor of packages/core breaks one place. When the entry point
 * exports the group layer, these become imports from '@deadbolt/core'.
 *
 * @module
 */
export { createGroupEngine, createGroupManager, decodeGroupMessage, groupIdHex } from '../../packages/core/src/group/index.js';
export type { GroupEngine, GroupId, GroupManager } from '../../packages/core/src/group/index.js';

