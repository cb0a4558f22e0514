import { deadboltVitestConfig } from '../../vitest.shared.js';

// The doc-block check runs tsc over every guide's code (and, through the source
// condition, the packages it imports): allow for a busy 2-core machine.
export default deadboltVitestConfig({ testTimeout: 180_000 });
