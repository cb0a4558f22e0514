import { packageBuild } from '../../tsup.base.js';

export default packageBuild({
  entry: ['src/index.ts', 'src/cli.ts', 'src/testing.ts'],
  dts: { entry: ['src/index.ts', 'src/testing.ts'] },
});
