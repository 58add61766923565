import { createPrivateKey, createPublicKey, scryptSync, sign, verify, type KeyObject } from 'node:crypto';
import { NixregError, usageError } from '../errors.js';
import { secretboxOpen } from './secretbox.js';

/**
 * cosign's key-based container signatures (https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md):
 * a simple-signing payload naming the image and its manifest digest, signed with ECDSA P-256 over its SHA-256,
 * DER-encoded and base64'd into the `dev.cosignproject.cosign/signature` annotation of the layer holding it.
 */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** The payload cosign writes: `optional` null, keys in cosign's order, no trailing newline. */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: COSIGN_SIGNATURE_TYPE },
      optional: null,
    }),
  );
}

export interface SimpleSigningClaims {
  dockerReference: string;
  manifestDigest: string;
}

/** The claims of a payload; an error naming what is wrong when it is not a cosign container image signature. */
export function parsePayload(bytes: Buffer, what: string): SimpleSigningClaims {
  let doc: { critical?: { identity?: { 'docker-reference'?: unknown }; image?: { 'docker-manifest-digest'?: unknown }; type?: unknown } };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw new NixregError(`${what}: the signed payload is not JSON`);
  }
  const c = doc?.critical;
  const digest = c?.image?.['docker-manifest-digest'];
  if (c?.type !== COSIGN_SIGNATURE_TYPE || typeof digest !== 'string') throw new NixregError(`${what}: the signed payload is not a ${COSIGN_SIGNATURE_TYPE}`);
  const ref = c.identity?.['docker-reference'];
  return { dockerReference: typeof ref === 'string' ? ref : '', manifestDigest: digest };
}

const COSIGN_ENCRYPTED = /-----BEGIN ENCRYPTED (SIGSTORE|COSIGN) PRIVATE KEY-----/;

/** A P-256 private key from PEM (PKCS#8, SEC1, or encrypted PKCS#8 with `password`). */
export function loadSigningKey(pem: string, where: string, password?: string): KeyObject {
  if (COSIGN_ENCRYPTED.test(pem)) return checkP256(openCosignKey(pem, where, password), where);
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4,ENCRYPTED/.test(pem);
  if (encrypted && password === undefined)
    throw usageError(`${where}: cannot decrypt the key (give the password with --key-password-stdin or COSIGN_PASSWORD)`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(password !== undefined ? { passphrase: password } : {}) });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (encrypted) throw usageError(`${where}: cannot decrypt the key: wrong password?`);
    throw usageError(`${where} is not a PEM private key (${e.code ?? e.message})`);
  }
  return checkP256(key, where);
}

const MAX_SCRYPT_N = 1 << 20;

/**
 * cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` (`cosign generate-key-pair`): base64 of a JSON document holding scrypt
 * parameters and salt, a NaCl secretbox nonce and the sealed PKCS#8 DER key (go-securesystemslib's `encrypted`).
 */
function openCosignKey(pem: string, where: string, password: string | undefined): KeyObject {
  if (password === undefined) throw usageError(`${where}: cannot decrypt the key (give the password with --key-password-stdin or COSIGN_PASSWORD)`);
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  let doc: {
    kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown };
    cipher?: { name?: unknown; nonce?: unknown };
    ciphertext?: unknown;
  };
  try {
    doc = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as typeof doc;
  } catch {
    throw usageError(`${where}: not a cosign encrypted key (its body is not base64 JSON)`);
  }
  const { N, r, p } = doc?.kdf?.params ?? {};
  const int = (v: unknown, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v <= max;
  if (
    doc?.kdf?.name !== 'scrypt' ||
    doc.cipher?.name !== 'nacl/secretbox' ||
    typeof doc.kdf.salt !== 'string' ||
    typeof doc.cipher.nonce !== 'string' ||
    typeof doc.ciphertext !== 'string'
  )
    throw usageError(`${where}: a cosign key encrypted with something other than scrypt + nacl/secretbox`);
  if (!int(N, MAX_SCRYPT_N) || ((N as number) & ((N as number) - 1)) !== 0 || !int(r, 32) || !int(p, 16))
    throw usageError(`${where}: scrypt parameters out of range (N ${String(N)}, r ${String(r)}, p ${String(p)})`);
  const [n, rr, pp] = [N as number, r as number, p as number];
  const boxKey = scryptSync(password, Buffer.from(doc.kdf.salt, 'base64'), 32, { N: n, r: rr, p: pp, maxmem: 128 * n * rr * pp + (32 << 20) });
  const der = secretboxOpen(Buffer.from(doc.ciphertext, 'base64'), Buffer.from(doc.cipher.nonce, 'base64'), boxKey);
  if (!der) throw usageError(`${where}: cannot decrypt the key: wrong password?`);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw usageError(`${where}: the decrypted key is not PKCS#8 (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
}

/** A P-256 public key from PEM (SubjectPublicKeyInfo), or the public half of a private key file. */
export function loadVerifyKey(pem: string, where: string, password?: string): KeyObject {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return createPublicKey(loadSigningKey(pem, where, password));
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw usageError(`${where} is not a PEM public key (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
  return checkP256(key, where);
}

function checkP256(key: KeyObject, where: string): KeyObject {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw usageError(
      `${where}: cosign signatures here are ECDSA P-256; this key is ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ' ' + key.asymmetricKeyDetails.namedCurve : ''}`,
    );
  return key;
}

/** base64 of the DER ECDSA signature over SHA-256(payload), as cosign stores it. */
export const signPayload = (payload: Buffer, key: KeyObject): string => sign('sha256', payload, { key, dsaEncoding: 'der' }).toString('base64');

export function verifyPayload(payload: Buffer, signatureB64: string, key: KeyObject): boolean {
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length === 0) return false;
  try {
    return verify('sha256', payload, { key, dsaEncoding: 'der' }, sig);
  } catch {
    return false;
  }
}
