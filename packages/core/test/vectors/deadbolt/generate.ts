/**
 * Generates Deadbolt's own deterministic protocol vectors (`pairwise-v1.json`).
 *
 * Randomness is injected through `unsafeRandomSource` (SECURITY.md A6) as a SHA-256
 * counter stream from a fixed seed per party, so every key, every message and every byte
 * of stored state is reproducible. Two sections:
 *
 * - `steps`: each KDF and primitive step of docs/protocol.md with explicit inputs and
 *   outputs (PQXDH SK, KDF_RK, KDF_CK, message keys, AD prefix, safety-number
 *   fingerprint), for implementers checking one function at a time;
 * - `transcript`: a whole conversation through the session manager (identities, the
 *   bundle, the initial message, replies across DH ratchet steps, safety numbers).
 *
 * Regenerate with `pnpm --filter @deadbolt/core vectors` and review the diff: a change to
 * these bytes is a wire-format change.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { address, type MlKemPublicKey, type X25519PublicKey, type X25519SecretKey } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import {
  createNodeCryptoProvider,
  createSessionManager,
  encodeDeviceCertificate,
  encodePrekeyBundle,
  Label,
  toHex,
  utf8,
  type CryptoProvider,
  type CryptoProviderOptions,
  type PrekeyBundle,
} from '../../../src/index.js';
import { pairwiseAdPrefix } from '../../../src/protocol/associated-data.js';
import { fingerprint } from '../../../src/protocol/safety-number.js';
import { deriveMessageKeys } from '../../../src/protocol/message-keys.js';
import { pqxdhInitiate, pqxdhRespond } from '../../../src/protocol/pqxdh.js';

export type ProviderFactory = (options?: CryptoProviderOptions) => CryptoProvider;

/** A deterministic byte stream: SHA-256(seed | counter u32) blocks, concatenated. */
export function deterministicRandom(crypto: CryptoProvider, seed: string): (n: number) => Uint8Array {
  const seedBytes = utf8(seed);
  let counter = 0;
  let pool = new Uint8Array(0);
  return (n: number) => {
    while (pool.length < n) {
      const block = new Uint8Array(seedBytes.length + 4);
      block.set(seedBytes);
      new DataView(block.buffer).setUint32(seedBytes.length, counter++);
      const next = new Uint8Array(pool.length + 32);
      next.set(pool);
      next.set(crypto.sha256(block), pool.length);
      pool = next;
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}

async function steps(make: ProviderFactory): Promise<Record<string, string>> {
  const plain = make();
  const crypto = make({ unsafeRandomSource: deterministicRandom(plain, 'deadbolt-vectors/steps') });
  const ikA = await crypto.x25519GenerateKeyPair();
  const ikB = await crypto.x25519GenerateKeyPair();
  const spkB = await crypto.x25519GenerateKeyPair();
  const opkB = await crypto.x25519GenerateKeyPair();
  const pqB = crypto.mlkem768GenerateKeyPair();
  const init = await pqxdhInitiate(crypto, ikA, {
    identityKey: ikB.publicKey,
    signedPrekey: spkB.publicKey,
    oneTimePrekey: opkB.publicKey,
    pqPrekey: pqB.publicKey as MlKemPublicKey,
  });
  const skB = await pqxdhRespond(
    crypto,
    { identityKey: ikB.secretKey, signedPrekey: spkB.secretKey, oneTimePrekey: opkB.secretKey, pqPrekey: pqB.secretKey },
    ikA.publicKey,
    init.baseKey.publicKey,
    init.kemCiphertext,
  );
  if (toHex(skB) !== toHex(init.sharedKey)) throw new Error('PQXDH sides disagree');
  const dh = await crypto.x25519(init.baseKey.secretKey as X25519SecretKey, spkB.publicKey as X25519PublicKey);
  const rk = crypto.hkdfSha256(dh, init.sharedKey, utf8(Label.ratchetRoot), 64);
  const ck = rk.slice(32);
  const mk = crypto.hmacSha256(ck, Uint8Array.of(1));
  const keys = deriveMessageKeys(crypto, mk, Label.pairwiseMessageKeys);
  const accountA = await crypto.ed25519GenerateKeyPair();
  return {
    'pqxdh.IK_A.secret': toHex(ikA.secretKey),
    'pqxdh.IK_B.secret': toHex(ikB.secretKey),
    'pqxdh.SPK_B.secret': toHex(spkB.secretKey),
    'pqxdh.OPK_B.secret': toHex(opkB.secretKey),
    'pqxdh.PQPK_B.public': toHex(pqB.publicKey),
    'pqxdh.EK_A.secret': toHex(init.baseKey.secretKey),
    'pqxdh.EK_A.public': toHex(init.baseKey.publicKey),
    'pqxdh.CT': toHex(init.kemCiphertext),
    'pqxdh.SK': toHex(init.sharedKey),
    'kdf_rk.input.dh': toHex(dh),
    'kdf_rk.output': toHex(rk),
    'kdf_ck.MK': toHex(mk),
    'kdf_ck.CK_next': toHex(crypto.hmacSha256(ck, Uint8Array.of(2))),
    'message_keys.key': toHex(keys.key),
    'message_keys.nonce': toHex(keys.nonce),
    'message_keys.commitment': toHex(keys.commitment),
    'safety.accountKey': toHex(accountA.publicKey),
    'safety.fingerprint(alice)': toHex(fingerprint(crypto, { userId: 'alice', accountKey: accountA.publicKey })),
  };
}

async function transcript(make: ProviderFactory): Promise<Record<string, unknown>> {
  const plain = make();
  const clock = () => 1_767_225_600_000; // 2026-01-01T00:00:00Z
  const party = (seed: string) =>
    createSessionManager({ storage: createMemoryStorage(), crypto: make({ unsafeRandomSource: deterministicRandom(plain, seed) }), now: clock });
  const alice = party('deadbolt-vectors/alice');
  const bob = party('deadbolt-vectors/bob');
  const A = address('alice', 'phone');
  const B = address('bob', 'laptop');
  const certA = await alice.createIdentity({ userId: A.userId, deviceId: A.deviceId });
  const certB = await bob.createIdentity({ userId: B.userId, deviceId: B.deviceId });
  const up = await bob.generatePrekeys({ oneTime: 1, pqOneTime: 1 });
  const bundle: PrekeyBundle = { certificate: up.certificate, signedPrekey: up.signedPrekey, oneTimePrekey: up.oneTimePrekeys[0]!, pqPrekey: up.pqPrekeys[0]! };
  await alice.processBundle(bundle);
  const messages: { from: string; plaintext: string; wire: string }[] = [];
  const say = async (fromAlice: boolean, text: string): Promise<void> => {
    const [s, r, from, to] = fromAlice ? [alice, bob, A, B] : [bob, alice, B, A];
    const wire = await s.encrypt(to, utf8(text));
    const got = await r.decrypt(from, wire);
    if (new TextDecoder().decode(got.plaintext) !== text) throw new Error('transcript mismatch');
    messages.push({ from: from.userId, plaintext: text, wire: toHex(wire) });
  };
  await say(true, 'first message, inside the PQXDH initial message');
  await say(true, 'second, still an initial message until Bob replies');
  await say(false, 'reply: a DH ratchet step');
  await say(true, 'back to Bob: another DH ratchet step');
  await say(true, '');
  const sn = await alice.safetyNumber('bob');
  return {
    'certificate.alice': toHex(encodeDeviceCertificate(certA)),
    'certificate.bob': toHex(encodeDeviceCertificate(certB)),
    'adPrefix.alice->bob': toHex(pairwiseAdPrefix(certA, certB)),
    bundle: toHex(encodePrekeyBundle(bundle)),
    messages,
    'safetyNumber.digits': sn.digits,
    'safetyNumber.qr': toHex(sn.qr),
  };
}

/** Generates the whole vector file's content with one provider. */
export async function generateVectors(make: ProviderFactory): Promise<Record<string, unknown>> {
  return {
    description: 'Deadbolt protocol v1 deterministic vectors; see docs/protocol.md and test/vectors/deadbolt/generate.ts',
    randomness: 'SHA-256(seed | u32 counter) blocks concatenated; seeds named per section',
    steps: await steps(make),
    transcript: await transcript(make),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = fileURLToPath(new URL('./pairwise-v1.json', import.meta.url));
  writeFileSync(out, `${JSON.stringify(await generateVectors(createNodeCryptoProvider), null, 2)}\n`);
  console.log(`wrote ${out}`);
}
