/**
 * The few things this transport reads from or changes in a session description (RFC 8866,
 * with the WebRTC attributes of RFC 8839 and RFC 8122):
 *
 * - the DTLS certificate fingerprints (`a=fingerprint:`, RFC 8122 §5), which the
 *   transport checks against the certificate the connected DTLS transport presents;
 * - ICE candidates (`a=candidate:`, RFC 8839 §5.1), which the privacy mode filters down to
 *   relayed ones so no host or server-reflexive address ever leaves the device;
 * - the media sections, which must all be data channels (`m=application … webrtc-datachannel`):
 *   a peer has no business asking for audio or video.
 *
 * @module
 */

/** A DTLS certificate fingerprint: the hash algorithm (lower case) and the digest bytes. */
export interface DtlsFingerprint {
  /** `sha-256`, `sha-384`, `sha-512` or `sha-1` (RFC 8122 hash function names, lower case). */
  readonly algorithm: string;
  readonly value: Uint8Array;
}

/** Hash algorithms a fingerprint may use, and their WebCrypto names and digest lengths. */
const HASHES: Readonly<Record<string, { readonly name: string; readonly length: number }>> = {
  'sha-1': { name: 'SHA-1', length: 20 },
  'sha-256': { name: 'SHA-256', length: 32 },
  'sha-384': { name: 'SHA-384', length: 48 },
  'sha-512': { name: 'SHA-512', length: 64 },
};

/** Splits a description into lines (SDP uses CRLF; a bare LF is tolerated). */
function lines(sdp: string): string[] {
  return sdp.split(/\r?\n/).filter((l) => l.length > 0);
}

/**
 * Parses `AB:CD:…` (RFC 8122 §5: upper-case hex pairs joined by colons; lower case is
 * accepted) into bytes, or `undefined` when it is not that form.
 */
export function parseFingerprintValue(text: string): Uint8Array | undefined {
  const t = text.trim();
  if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$/.test(t)) return undefined;
  const parts = t.split(':');
  return Uint8Array.from(parts, (p) => Number.parseInt(p, 16));
}

/**
 * The DTLS fingerprints a description declares, at session or media level. Unknown hash
 * algorithms and malformed values are left out.
 *
 * @example
 * ```ts
 * sdpFingerprints('a=fingerprint:sha-256 AB:CD…\r\n'); // [{ algorithm: 'sha-256', value: Uint8Array(32) }]
 * ```
 */
export function sdpFingerprints(sdp: string): DtlsFingerprint[] {
  const out: DtlsFingerprint[] = [];
  for (const line of lines(sdp)) {
    const m = /^a=fingerprint:(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    const algorithm = (m[1] as string).toLowerCase();
    const hash = HASHES[algorithm];
    const value = parseFingerprintValue(m[2] as string);
    if (hash === undefined || value === undefined || value.length !== hash.length) continue;
    out.push({ algorithm, value });
  }
  return out;
}

/** The fingerprint of a DER certificate under `algorithm` (WebCrypto, present in browsers and Node). */
export async function certificateFingerprint(der: Uint8Array, algorithm: string): Promise<DtlsFingerprint | undefined> {
  const hash = HASHES[algorithm.toLowerCase()];
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (hash === undefined || subtle === undefined) return undefined;
  const copy = new Uint8Array(der.byteLength);
  copy.set(der);
  const digest = new Uint8Array(await subtle.digest(hash.name, copy));
  return { algorithm: algorithm.toLowerCase(), value: digest };
}

/** Whether `actual` equals one of `expected` (same algorithm and bytes). Not secret data: a plain compare. */
export function fingerprintMatches(expected: readonly DtlsFingerprint[], actual: DtlsFingerprint): boolean {
  return expected.some((e) => e.algorithm === actual.algorithm && e.value.length === actual.value.length && e.value.every((b, i) => b === actual.value[i]));
}

/** The candidate type of an `a=candidate:` line (or a bare `candidate:` string): `host`, `srflx`, `prflx`, `relay`. */
export function candidateType(line: string): string | undefined {
  return /\styp\s+(\S+)/.exec(line)?.[1];
}

/**
 * Why a peer's description is refused, or `undefined` when it is acceptable: it must have
 * at least one media section, every one a data channel over DTLS/SCTP, and at least one
 * fingerprint this transport can check.
 */
export function sdpProblem(sdp: string): string | undefined {
  const media = lines(sdp).filter((l) => l.startsWith('m='));
  if (media.length === 0) return 'no media section';
  if (!media.every((m) => /^m=application\s+\d+\s+\S*DTLS\/SCTP\s+webrtc-datachannel$/.test(m.trim()))) return 'a media section that is not a data channel';
  if (sdpFingerprints(sdp).length === 0) return 'no usable DTLS fingerprint';
  return undefined;
}

/**
 * The privacy mode's filter (`privacy: 'relay-only'`): keeps only relayed candidates
 * (`typ relay`, addresses of the TURN server) with their related address blanked, and replaces the default connection
 * address and port (`c=`, `m=`), which some stacks fill with a host address, by the
 * placeholders `0.0.0.0` and 9 (RFC 8839 §4.1.1 uses them for "no candidate yet").
 *
 * @example
 * ```ts
 * const safe = relayOnlySdp(pc.localDescription.sdp); // no host or server-reflexive address left
 * ```
 */
export function relayOnlySdp(sdp: string): string {
  const out: string[] = [];
  for (const line of lines(sdp)) {
    if (line.startsWith('a=candidate:')) {
      // A relayed candidate's related address (`raddr`, RFC 8839 §5.1) is this device's
      // address as the TURN server saw it: informational only, and exactly what must not leak.
      if (candidateType(line) === 'relay') out.push(line.replace(/\sraddr\s+\S+\s+rport\s+\d+/, ' raddr 0.0.0.0 rport 0'));
      continue;
    }
    if (/^c=IN IP[46] /.test(line)) {
      out.push('c=IN IP4 0.0.0.0');
      continue;
    }
    const m = /^m=(\S+)\s+\d+\s+(.*)$/.exec(line);
    if (m) {
      out.push(`m=${m[1]} 9 ${m[2]}`);
      continue;
    }
    out.push(line);
  }
  return `${out.join('\r\n')}\r\n`;
}

/**
 * Leaves out `a=end-of-candidates` (RFC 8840 §8.2). libdatachannel applies a description's
 * candidates only after the description itself; told that the peer has no more, its ICE
 * agent may fail the connection in between, for want of candidates, and the candidates
 * then meet a closed transport ("Got a remote candidate without ICE transport"). Without
 * the attribute every stack still uses every candidate listed; the transport's own
 * connection bound, not end-of-candidates, ends an attempt that cannot succeed.
 */
export function withoutEndOfCandidates(sdp: string): string {
  return `${lines(sdp)
    .filter((l) => l !== 'a=end-of-candidates')
    .join('\r\n')}\r\n`;
}

/** The candidates (`a=candidate:` lines) of a description, for tests and diagnostics. */
export function sdpCandidates(sdp: string): string[] {
  return lines(sdp).filter((l) => l.startsWith('a=candidate:'));
}
