import { packageBuild } from '../../tsup.base.js';

export default packageBuild({
  // The three `#crypto-default` targets (package.json "imports") are entries of their own,
  // and `#crypto-default` stays an import in dist/index.js: the consumer's runtime or
  // bundler picks the platform's provider by condition (node, browser, otherwise noble).
  // `@deadbolt/core/group` (the group engine) is an entry of its own, so that the root entry
  // does not import it statically and the client's lazily loaded group layer takes it out
  // of an application's initial bundle.
  entry: {
    index: 'src/index.ts',
    'group/index': 'src/group/index.ts',
    'crypto/default-node': 'src/crypto/default-node.ts',
    'crypto/default-web': 'src/crypto/default-web.ts',
    'crypto/default-noble': 'src/crypto/default-noble.ts',
  },
  external: ['#crypto-default'],
});
