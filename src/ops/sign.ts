import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { NixregError, describeSystemError, integrityError, notFoundError, usageError } from '../errors.js';
import { DIGEST_RE, sha256Digest } from '../digest/sha256.js';
import { MediaType } from '../manifest/media-types.js';
import type { RegistryAccess } from '../registry/access.js';
import type { RegistryClient } from '../registry/client.js';
import {
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  loadSigningKey,
  loadVerifyKey,
  parsePayload,
  signPayload,
  simpleSigningPayload,
  verifyPayload,
} from '../sbom/simple-signing.js';
import { refOf, withClient } from './registry-client.js';
import { uploadRetryPolicy, writeBufferBlob } from '../sink/registry/write.js';

/** cosign's signature tag for a manifest digest: `sha256-<hex>.sig` in the image's repository. */
export const signatureTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;

const MAX_PAYLOAD_BYTES = 1 << 20;

export interface KeyOptions {
  /** path of the PEM key file */
  key: string;
  password?: string;
}

export interface SignResult {
  /** `REGISTRY/REPOSITORY@DIGEST` that was signed */
  signed: string;
  signatureTag: string;
  signatureManifest: string;
}

/**
 * `nixreg sign REF --key KEY`: add a cosign-compatible signature of REF's manifest digest to the `.sig` image
 * (one layer per signature: the payload blob, its signature as annotation), creating it when absent.
 */
export async function signImage(ref: string, o: KeyOptions, access: RegistryAccess = {}): Promise<SignResult> {
  const key = loadSigningKey(await readKey(o.key), o.key, o.password);
  return withClient(
    ref,
    access,
    async (c, r) => {
      const digest = await manifestDigest(c, refOf(r), r.name);
      const payload = simpleSigningPayload(r.name, digest);
      const layer = {
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        digest: sha256Digest(payload),
        size: payload.length,
        annotations: { [SIGNATURE_ANNOTATION]: signPayload(payload, key) },
      };
      await writeBufferBlob(c, payload, layer.digest, uploadRetryPolicy(access));
      const tag = signatureTag(digest);
      const layers = [...(await existingSignatures(c, tag)), layer];
      // the config go-containerregistry's empty image gets once cosign appends its layers
      const config = Buffer.from(
        JSON.stringify({
          architecture: '',
          created: '0001-01-01T00:00:00Z',
          history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
          os: '',
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
          config: {},
        }),
      );
      const configDigest = sha256Digest(config);
      await writeBufferBlob(c, config, configDigest, uploadRetryPolicy(access));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, size: config.length, digest: configDigest },
          layers,
        }),
      );
      const m = await c.putManifest(tag, manifest, MediaType.ociManifest);
      return { signed: `${r.name}@${digest}`, signatureTag: `${r.name}:${tag}`, signatureManifest: m };
    },
    { push: true },
  );
}

export interface VerifiedSignature {
  payload: unknown;
  layer: string;
}

export interface VerifyResult {
  verified: string;
  signatures: VerifiedSignature[];
}

/**
 * `nixreg verify REF --key PUB`: at least one signature in REF's `.sig` image must verify with the key AND name
 * REF's current manifest digest; otherwise one line saying which of the three failed.
 */
export async function verifyImage(ref: string, o: KeyOptions, access: RegistryAccess = {}): Promise<VerifyResult> {
  const key = loadVerifyKey(await readKey(o.key), o.key, o.password);
  return withClient(ref, access, async (c, r) => {
    const digest = await manifestDigest(c, refOf(r), r.name);
    const tag = signatureTag(digest);
    const layers = await existingSignatures(c, tag);
    if (!layers.length) throw notFoundError(`no signature for ${r.name}@${digest} (no ${r.name}:${tag}); sign it with nixreg sign or cosign sign`);
    const ok: VerifiedSignature[] = [];
    let badKey = 0;
    const wrongImage: string[] = [];
    for (const l of layers) {
      if (l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
      const payload = await readPayload(c, l.digest, `signature payload ${l.digest}`);
      if (!verifyPayload(payload, l.annotations?.[SIGNATURE_ANNOTATION] ?? '', key as KeyObject)) {
        badKey++;
        continue;
      }
      const claims = parsePayload(payload, `signature ${l.digest}`);
      if (claims.manifestDigest !== digest) {
        wrongImage.push(claims.manifestDigest);
        continue;
      }
      ok.push({ payload: JSON.parse(payload.toString('utf8')), layer: l.digest });
    }
    if (!ok.length) {
      if (wrongImage.length)
        throw integrityError(
          `the signature in ${r.name}:${tag} verifies with ${o.key} but is for ${wrongImage[0]}, not ${digest}: the manifest changed or the signature was copied`,
        );
      throw integrityError(
        `no signature of ${r.name}@${digest} verifies with ${o.key} (${badKey} checked): signed with another key, or the signature was altered`,
      );
    }
    return { verified: `${r.name}@${digest}`, signatures: ok };
  });
}

interface SignatureLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

async function existingSignatures(c: RegistryClient, tag: string): Promise<SignatureLayer[]> {
  if (!(await c.headManifest(tag))) return [];
  const m = await c.getManifest(tag);
  let doc: { layers?: unknown };
  try {
    doc = JSON.parse(m.bytes.toString('utf8')) as { layers?: unknown };
  } catch {
    throw new NixregError(`${c.registry}/${c.repository}:${tag} is not JSON; it is not a cosign signature image`);
  }
  if (!Array.isArray(doc.layers)) throw new NixregError(`${c.registry}/${c.repository}:${tag} has no layers; it is not a cosign signature image`);
  return (doc.layers as SignatureLayer[]).filter((l) => l && typeof l.digest === 'string' && DIGEST_RE.test(l.digest));
}

async function manifestDigest(c: RegistryClient, ref: string, name: string): Promise<string> {
  if (DIGEST_RE.test(ref)) return ref;
  const head = await c.headManifest(ref);
  if (!head) throw notFoundError(`${name}:${ref} not found on ${c.registry}`);
  return head.digest;
}

async function readPayload(c: RegistryClient, digest: string, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const chunk of await c.getBlob(digest)) {
    got += (chunk as Buffer).length;
    if (got > MAX_PAYLOAD_BYTES) throw new NixregError(`${what} is larger than ${MAX_PAYLOAD_BYTES} bytes; not a signature payload`);
    parts.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(parts);
  if (sha256Digest(bytes) !== digest) throw integrityError(`${what}: the registry's bytes hash to ${sha256Digest(bytes)}`);
  return bytes;
}

async function readKey(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read key ${file}: ${describeSystemError(err)}`);
  }
}
