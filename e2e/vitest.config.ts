import { deadboltVitestConfig } from '../vitest.shared.js';

export default deadboltVitestConfig({ testTimeout: 120_000 });
