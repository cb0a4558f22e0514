/**
 * PQXDH key agreement (Signal's PQXDH specification, revision 3, with ML-KEM-768;
 * docs/protocol.md §5).
 *
 * Deadbolt signs prekeys with a separate Ed25519 device signing key bound to the X25519
 * identity key IK by the device certificate, instead of XEdDSA over IK (§3.2): the
 * certificate gives the same binding with only standard primitives.
 *
 * ```
 * DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   [DH4 = DH(EK_A, OPK_B)]
 * (CT, SS) = ML-KEM-768.Encaps(PQPK_B)
 * SK = HKDF-SHA256(ikm = 0xFF^32 | DH1 | DH2 | DH3 [| DH4] | SS, salt = 0^32,
 *                  info = "Deadbolt_v1_PQXDH_X25519_SHA-256_ML-KEM-768", L = 32)
 * ```
 *
 * (PQXDH §2.2 "Cryptographic notation" defines the 0xFF prefix F and the zero salt; §3.3
 * "Sending the initial message" the order of the inputs.)
 *
 * @module
 */
import type { KeyPair, MlKemPublicKey, MlKemSecretKey, X25519PublicKey, X25519SecretKey } from '@deadbolt/spec';
import { concatBytes, utf8 } from '../codec/bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label } from './constants.js';

const F = new Uint8Array(32).fill(0xff);
const ZERO_SALT = new Uint8Array(32);
const INFO = utf8(Label.pqxdh);

/** What the initiator needs from a verified bundle. */
export interface PqxdhResponderPublic {
  readonly identityKey: X25519PublicKey;
  readonly signedPrekey: X25519PublicKey;
  readonly oneTimePrekey?: X25519PublicKey;
  readonly pqPrekey: MlKemPublicKey;
}

/** The initiator's result. */
export interface PqxdhInitiation {
  /** SK, the shared secret that seeds the Double Ratchet. */
  readonly sharedKey: Uint8Array;
  /** EK_A. */
  readonly baseKey: KeyPair<X25519PublicKey, X25519SecretKey>;
  /** CT, to send to the responder. */
  readonly kemCiphertext: Uint8Array;
}

function kdf(crypto: CryptoProvider, parts: Uint8Array[]): Uint8Array {
  return crypto.hkdfSha256(concatBytes(F, ...parts), ZERO_SALT, INFO, 32);
}

/** PQXDH §3.3: the initiator's side, after the bundle's signatures were verified. */
export async function pqxdhInitiate(
  crypto: CryptoProvider,
  identity: KeyPair<X25519PublicKey, X25519SecretKey>,
  peer: PqxdhResponderPublic,
): Promise<PqxdhInitiation> {
  const baseKey = await crypto.x25519GenerateKeyPair();
  const { ciphertext, sharedSecret } = crypto.mlkem768Encapsulate(peer.pqPrekey);
  const parts = [
    await crypto.x25519(identity.secretKey, peer.signedPrekey),
    await crypto.x25519(baseKey.secretKey, peer.identityKey),
    await crypto.x25519(baseKey.secretKey, peer.signedPrekey),
  ];
  if (peer.oneTimePrekey) parts.push(await crypto.x25519(baseKey.secretKey, peer.oneTimePrekey));
  parts.push(sharedSecret);
  return { sharedKey: kdf(crypto, parts), baseKey, kemCiphertext: ciphertext };
}

/** The responder's private keys named by the initial message. */
export interface PqxdhResponderSecrets {
  readonly identityKey: X25519SecretKey;
  readonly signedPrekey: X25519SecretKey;
  readonly oneTimePrekey?: X25519SecretKey;
  readonly pqPrekey: MlKemSecretKey;
}

/** PQXDH §3.4: the responder recomputes SK from the initial message. */
export async function pqxdhRespond(
  crypto: CryptoProvider,
  secrets: PqxdhResponderSecrets,
  initiatorIdentityKey: X25519PublicKey,
  baseKey: X25519PublicKey,
  kemCiphertext: Uint8Array,
): Promise<Uint8Array> {
  const parts = [
    await crypto.x25519(secrets.signedPrekey, initiatorIdentityKey),
    await crypto.x25519(secrets.identityKey, baseKey),
    await crypto.x25519(secrets.signedPrekey, baseKey),
  ];
  if (secrets.oneTimePrekey) parts.push(await crypto.x25519(secrets.oneTimePrekey, baseKey));
  parts.push(crypto.mlkem768Decapsulate(secrets.pqPrekey, kemCiphertext));
  return kdf(crypto, parts);
}
