import { deadboltVitestConfig } from '../../vitest.shared.js';

export default deadboltVitestConfig();
