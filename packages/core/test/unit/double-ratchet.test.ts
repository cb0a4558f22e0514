/**
 * The Double Ratchet functions directly (docs/protocol.md §6), on states made by PQXDH:
 * AD binding, the single skip budget (pn + n), low-order header keys, and purity.
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError, type X25519PublicKey } from '@deadbolt/spec';
import { pad } from '../../src/index.js';
import { ratchetDecrypt, ratchetEncrypt, ratchetInitInitiator, ratchetInitResponder, skipCost, type RatchetState } from '../../src/protocol/double-ratchet.js';
import { decodeRatchetMessage, encodeRatchetHeader, encodeRatchetMessage } from '../../src/protocol/ratchet-message.js';
import { nodeCrypto as crypto } from '../helpers/parties.js';

const limits = { maxForwardSkip: 50, maxSkippedKeys: 100 };
const adAB = new Uint8Array([1, 1, 1]);

async function pair(): Promise<{ alice: RatchetState; bob: RatchetState }> {
  const sk = crypto.randomBytes(32);
  const spk = await crypto.x25519GenerateKeyPair();
  return { alice: await ratchetInitInitiator(crypto, sk, spk.publicKey), bob: ratchetInitResponder(sk, spk) };
}

function send(state: RatchetState, text: string, ad = adAB): { state: RatchetState; wire: Uint8Array } {
  const out = ratchetEncrypt(crypto, state, pad(new TextEncoder().encode(text)), ad);
  return { state: out.state, wire: encodeRatchetMessage(out.headerBytes, out.body) };
}

async function fails(p: Promise<unknown>, code: string): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(isDeadboltError(caught) ? caught.code : caught).toBe(code);
}

describe('double ratchet', () => {
  test('the associated data is bound: the same keys with a different AD prefix fail', async () => {
    const { alice, bob } = await pair();
    const { wire } = send(alice, 'bound');
    for (const other of [new Uint8Array(0), new Uint8Array([1, 1, 2]), new Uint8Array([1, 1, 1, 0])]) {
      await fails(ratchetDecrypt(crypto, bob, decodeRatchetMessage(wire), other, limits), 'DECRYPT_FAILED');
    }
    const ok = await ratchetDecrypt(crypto, bob, decodeRatchetMessage(wire), adAB, limits);
    expect(ok.paddedPlaintext.length).toBe(256);
  });

  test('decrypt never mutates its input state, on success or failure', async () => {
    const { alice, bob } = await pair();
    const frozen = JSON.stringify(bob, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v instanceof Map ? [...v.entries()] : v));
    const { wire } = send(alice, 'x');
    await ratchetDecrypt(crypto, bob, decodeRatchetMessage(wire), adAB, limits);
    await fails(ratchetDecrypt(crypto, bob, decodeRatchetMessage(wire), new Uint8Array(1), limits), 'DECRYPT_FAILED');
    expect(JSON.stringify(bob, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v instanceof Map ? [...v.entries()] : v))).toBe(frozen);
  });

  test('pn and n skips share one budget, checked before any derivation', async () => {
    let { alice, bob } = await pair();
    // Establish both chains.
    let m = send(alice, 'a0');
    alice = m.state;
    bob = (await ratchetDecrypt(crypto, bob, decodeRatchetMessage(m.wire), adAB, limits)).state;
    m = send(bob, 'b0');
    bob = m.state;
    const genuine = decodeRatchetMessage(m.wire);
    // A new chain whose pn alone is past the limit (the skips would happen on Bob's old chain at Alice).
    const fresh = (await crypto.x25519GenerateKeyPair()).publicKey;
    const forged = (pn: number, n: number) => decodeRatchetMessage(encodeRatchetMessage(encodeRatchetHeader({ dh: fresh, pn, n }), genuine.body));
    alice = (await ratchetDecrypt(crypto, alice, genuine, adAB, limits)).state; // alice now has CKr
    expect(skipCost(alice, forged(51, 0))).toBe(50); // Nr is 1: 50 skipped keys on the old chain
    await fails(ratchetDecrypt(crypto, alice, forged(52, 0), adAB, limits), 'LIMIT_EXCEEDED');
    await fails(ratchetDecrypt(crypto, alice, forged(26, 26), adAB, limits), 'LIMIT_EXCEEDED'); // 25 + 26 > 50
    await fails(ratchetDecrypt(crypto, alice, forged(1, 51), adAB, limits), 'LIMIT_EXCEEDED');
    // Within the budget the forged message still fails, but only on authentication.
    await fails(ratchetDecrypt(crypto, alice, forged(26, 25), adAB, limits), 'DECRYPT_FAILED');
  });

  test('a low-order ratchet key in a header is an ordinary decrypt failure', async () => {
    const { alice, bob } = await pair();
    const genuine = decodeRatchetMessage(send(alice, 'x').wire);
    const lowOrder = new Uint8Array(32) as X25519PublicKey; // u = 0
    const forged = decodeRatchetMessage(encodeRatchetMessage(encodeRatchetHeader({ ...genuine.header, dh: lowOrder }), genuine.body));
    await fails(ratchetDecrypt(crypto, bob, forged, adAB, limits), 'DECRYPT_FAILED');
  });
});
