import { deadboltVitestConfig } from '../../vitest.shared.js';

// Two whole clients in Chromium driven through the app's UI against a relay: the app is
// built once (vite build), then sign-up, 1:1 and group chats, reloads, three transports,
// safety numbers and devices, on a shared 2-core machine.
export default deadboltVitestConfig({ testTimeout: 120_000 });
