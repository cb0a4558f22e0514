/** The WebRTC bench runs end to end in --quick mode and prints well-formed --json lines (no speed assertions). */
import { expect, test } from 'vitest';
import { runQuickJson } from './helpers/run-bench.js';

test('pnpm bench:webrtc --quick --json prints every figure, one well-formed object per line', async () => {
  const lines = await runQuickJson('webrtc-main.ts', 120_000);
  const rates = lines.filter((l) => 'perSecond' in l);
  const values = lines.filter((l) => !('perSecond' in l));
  expect(rates.map((r) => r.name)).toEqual(['webrtc/node-datachannel/direct-1024B-messages', 'webrtc/werift/direct-1024B-messages']);
  for (const rate of rates) {
    expect(Object.keys(rate).sort()).toEqual(['baseline', 'baselinePerSecond', 'name', 'perSecond', 'ratio']);
    expect(rate.baseline).toBe('webrtc/websocket-relay/1024B-messages');
    expect(rate.perSecond).toBeGreaterThan(0);
    expect(rate.baselinePerSecond).toBeGreaterThan(0);
  }
  for (const v of values) {
    expect(Object.keys(v).sort()).toEqual(['name', 'unit', 'value']);
    expect(typeof v.value).toBe('number');
  }
  const names = values.map((v) => v.name);
  expect(names).toContain('webrtc/websocket-relay/1024B-messages');
  for (const path of ['node-datachannel', 'werift', 'websocket-relay']) {
    for (const figure of ['cpu-per-message', 'half-load/rate', 'half-load/latency-p50', 'half-load/latency-p99']) expect(names).toContain(`webrtc/${path}/${figure}`);
  }
  for (const impl of ['node-datachannel', 'werift']) {
    for (const figure of ['setup-first-send-p50', 'setup-first-send-p99', 'setup-pairs', 'setup-preconnect-no-link', 'relayed-during-direct-runs', 'preconnect-calls', 'preconnect-ended-without-link']) {
      expect(names).toContain(`webrtc/${impl}/${figure}`);
    }
    // The preconnect set-up times are there whenever at least one pair got a link that way.
    const value = (figure: string) => values.find((v) => v.name === `webrtc/${impl}/${figure}`)?.value as number;
    if (value('setup-preconnect-no-link') < value('setup-pairs')) {
      expect(names).toContain(`webrtc/${impl}/setup-preconnect-p50`);
      expect(names).toContain(`webrtc/${impl}/setup-preconnect-p99`);
    }
  }
}, 150_000);
