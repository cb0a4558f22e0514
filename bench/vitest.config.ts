import { deadboltVitestConfig } from '../vitest.shared.js';

// The smoke test runs the whole bench script in --quick mode in a child process.
export default deadboltVitestConfig({ testTimeout: 180_000 });
