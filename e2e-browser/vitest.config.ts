import { deadboltVitestConfig } from '../vitest.shared.js';

// Whole clients in Chromium against a relay: set-up (identities, PQXDH) plus 2 x 90
// messages through IndexedDB's strict-durability commits on a shared 2-core machine.
export default deadboltVitestConfig({ testTimeout: 120_000 });
