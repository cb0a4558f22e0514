/**
 * The libsignal-client process's benchmarks (see isolation.ts): every figure's libsignal
 * side. This module never imports Deadbolt.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { CiphertextMessageType } from '@signalapp/libsignal-client';
import { PLAINTEXT_LENGTH, config } from './config.js';
import type { Suite, SuiteOptions } from './isolation.js';
import { LibsignalPair, LibsignalSetups, ObjectSessionStore, SerializedSessionStore, type SetupInput } from './libsignal.js';
import { checkPairs, figureBenches, sizeFigures, type SetupPool } from './pair-figures.js';

export async function libsignalSuite({ quick }: SuiteOptions): Promise<Suite> {
  const cfg = config(quick);
  const plaintext = new Uint8Array(randomBytes(PLAINTEXT_LENGTH)); // a plain Uint8Array<ArrayBuffer>

  const proto = await LibsignalPair.establish(() => new ObjectSessionStore(), plaintext);
  const api = await LibsignalPair.establish(() => new SerializedSessionStore(), plaintext);
  await checkPairs([proto, api], plaintext);

  const setups = new LibsignalSetups();
  const setup: SetupPool<SetupInput> = {
    generate: async (n) => setups.inputs(n),
    run: (input) => setups.run(input, plaintext),
  };

  return {
    benches: figureBenches('libsignal', cfg, { proto, api }, setup, plaintext),
    async info() {
      return sizeFigures(quick, api, plaintext, async () => {
        const m = await proto.steadyMessage(plaintext);
        if (m.type !== CiphertextMessageType.Whisper) throw new Error('bench: expected a SignalMessage');
        return m.length;
      });
    },
  };
}
