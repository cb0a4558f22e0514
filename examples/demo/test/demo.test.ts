/** The demo is the README's first command: it must run to the end on its own. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

test('the demo runs end to end through a real relay and shows only ciphertext in its database', async () => {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', 'src/main.ts'], { cwd, timeout: 60_000 });
  expect(stdout).toContain('alice -> bob: Hi Bob!');
  expect(stdout).toContain('bob -> alice: Hi Alice.');
  expect(stdout).toContain('alice -> carol: Yes! 7pm.');
  expect(stdout).toContain('(bob sees the same: yes)');
  const relayPart = stdout.slice(stdout.indexOf('What the relay stored'));
  expect(relayPart).toMatch(/messages \(\d+ rows\)/);
  // The plaintexts never appear in the relay's part of the output.
  for (const phrase of ['Hi Bob', 'Friday', '7pm', 'Double Ratchet', 'long-polling']) expect(relayPart).not.toContain(phrase);
}, 90_000);
