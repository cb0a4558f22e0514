/**
 * The Deadbolt demo: two devices, each with its own storage, set up an end-to-end
 * encrypted session (PQXDH with ML-KEM-768, then the Double Ratchet) and exchange
 * messages. Beside each message it prints what a network eavesdropper, or the relay,
 * would see: only padded ciphertext.
 *
 * Run: `pnpm demo`
 */
import { createSessionManager, formatSafetyNumber, toHex, utf8, fromUtf8, type PrekeyBundle } from '@deadbolt/core';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { address } from '@deadbolt/spec';

const line = (s = ''): void => console.log(s);
const preview = (bytes: Uint8Array): string => `${toHex(bytes.subarray(0, 24))}… (${bytes.length} bytes)`;

async function main(): Promise<void> {
  const aliceAddress = address('alice', 'phone');
  const bobAddress = address('bob', 'laptop');
  const alice = createSessionManager({ storage: createMemoryStorage() });
  const bob = createSessionManager({ storage: createMemoryStorage() });
  line(`crypto provider: ${alice.crypto.name}`);

  await alice.createIdentity({ userId: aliceAddress.userId, deviceId: aliceAddress.deviceId });
  await bob.createIdentity({ userId: bobAddress.userId, deviceId: bobAddress.deviceId });

  // Bob publishes prekeys (private halves stay in his storage); the directory hands Alice a bundle.
  const upload = await bob.generatePrekeys({ oneTime: 5, pqOneTime: 2 });
  const bundle: PrekeyBundle = {
    certificate: upload.certificate,
    signedPrekey: upload.signedPrekey,
    oneTimePrekey: upload.oneTimePrekeys[0]!,
    pqPrekey: upload.pqPrekeys[0]!,
  };
  await alice.processBundle(bundle);
  line('alice verified bob\'s bundle and ran PQXDH (X25519 + ML-KEM-768)');
  line();

  const script: [string, string][] = [
    ['alice', 'Hi Bob! This message is end-to-end encrypted.'],
    ['bob', 'Hi Alice. The relay only ever sees padded ciphertext.'],
    ['alice', 'And a new Diffie-Hellman ratchet step happens on every reply.'],
    ['bob', 'ok'],
  ];
  for (const [who, text] of script) {
    const [sender, receiver, from, to] = who === 'alice' ? [alice, bob, aliceAddress, bobAddress] : [bob, alice, bobAddress, aliceAddress];
    const wire = await sender.encrypt(to, utf8(text));
    const { plaintext } = await receiver.decrypt(from, wire);
    line(`${from.userId} -> ${to.userId}: ${fromUtf8(plaintext)}`);
    line(`  eavesdropper sees: ${preview(wire)}`);
  }

  line();
  const a = await alice.safetyNumber('bob');
  const b = await bob.safetyNumber('alice');
  line(`safety number (alice's view): ${formatSafetyNumber(a.digits)}`);
  line(`safety number (bob's view):   ${formatSafetyNumber(b.digits)}`);
  line(a.digits === b.digits ? 'they match: no one is in the middle' : 'MISMATCH');
  if (a.digits !== b.digits) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
