/** The demo is the README's first command: it must run to the end and show matching safety numbers. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

test('the demo runs, decrypts every message and the safety numbers match', async () => {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', 'src/main.ts'], { cwd });
  expect(stdout).toContain('alice -> bob: Hi Bob!');
  expect(stdout).toContain('bob -> alice: ok');
  expect(stdout).toContain('they match');
  // What the eavesdropper sees never contains the plaintext.
  for (const line of stdout.split('\n').filter((l) => l.includes('eavesdropper sees'))) {
    expect(line).not.toMatch(/Hi|relay|ratchet/);
  }
}, 60_000);
