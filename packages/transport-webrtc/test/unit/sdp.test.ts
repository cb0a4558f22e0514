/** The description helpers: fingerprints, the privacy filter, what a peer may ask for. */
import { describe, expect, test } from 'vitest';
import { relayOnlySdp, sdpCandidates, sdpFingerprints } from '../../src/index.js';
import { certificateFingerprint, fingerprintMatches, parseFingerprintValue, sdpProblem, withoutEndOfCandidates } from '../../src/sdp.js';

const FP = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
const sdp = (extra: string[] = []): string =>
  [
    'v=0',
    'o=- 4611 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    `a=fingerprint:sha-256 ${FP}`,
    'm=application 50000 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 192.0.2.7',
    'a=mid:0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:0123456789abcdefghijkl',
    'a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host generation 0',
    'a=candidate:2 1 udp 1686052607 203.0.113.9 61000 typ srflx raddr 192.0.2.7 rport 50000 generation 0',
    'a=candidate:3 1 udp 41885439 198.51.100.3 3478 typ relay raddr 203.0.113.9 rport 61000 generation 0',
    'a=end-of-candidates',
    ...extra,
    '',
  ].join('\r\n');

describe('fingerprints', () => {
  test('parsed from a=fingerprint lines; unknown algorithms and wrong lengths left out', () => {
    const fps = sdpFingerprints(sdp(['a=fingerprint:md5 AB:CD', 'a=fingerprint:sha-256 AB:CD', 'a=fingerprint:SHA-1 ' + FP.slice(0, 59)]));
    expect(fps.map((f) => f.algorithm)).toEqual(['sha-256', 'sha-1']);
    expect(fps[0]!.value).toEqual(parseFingerprintValue(FP));
    expect(parseFingerprintValue('AB:C')).toBeUndefined();
    expect(parseFingerprintValue('ab:cd')).toEqual(Uint8Array.of(0xab, 0xcd));
  });

  test('a certificate matches only the fingerprint of its own bytes', async () => {
    const der = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const fp = await certificateFingerprint(der, 'sha-256');
    expect(fp?.value.length).toBe(32);
    expect(fingerprintMatches([fp!], fp!)).toBe(true);
    const other = der.slice();
    other[0]! ^= 1;
    expect(fingerprintMatches([fp!], (await certificateFingerprint(other, 'sha-256'))!)).toBe(false);
    expect(fingerprintMatches([{ algorithm: 'sha-384', value: fp!.value }], fp!)).toBe(false);
  });
});

describe('the privacy filter', () => {
  test('keeps only relayed candidates, blanks their related address, and the default address and port', () => {
    const out = relayOnlySdp(sdp());
    expect(sdpCandidates(out)).toEqual(['a=candidate:3 1 udp 41885439 198.51.100.3 3478 typ relay raddr 0.0.0.0 rport 0 generation 0']);
    // No address of this device is left anywhere in the description.
    expect(out).not.toContain('192.0.2.7');
    expect(out).not.toContain('203.0.113.9');
    expect(out).toContain('m=application 9 UDP/DTLS/SCTP webrtc-datachannel');
    expect(out).toContain('c=IN IP4 0.0.0.0');
    expect(out).toContain(`a=fingerprint:sha-256 ${FP}`);
    expect(out.endsWith('\r\n')).toBe(true);
  });

  test('end-of-candidates is left out of applied descriptions, and nothing else', () => {
    const out = withoutEndOfCandidates(sdp());
    expect(out).not.toContain('end-of-candidates');
    expect(out.split('\r\n').length).toBe(sdp().split('\r\n').length - 1);
  });
});

describe('what a peer may ask for', () => {
  test('data channels with a usable fingerprint only', () => {
    expect(sdpProblem(sdp())).toBeUndefined();
    expect(sdpProblem(sdp(['m=audio 9 UDP/TLS/RTP/SAVPF 111']))).toBe('a media section that is not a data channel');
    expect(sdpProblem(sdp().replace(/a=fingerprint:.*\r\n/, ''))).toBe('no usable DTLS fingerprint');
    expect(sdpProblem('v=0\r\n')).toBe('no media section');
  });
});
