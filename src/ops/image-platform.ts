import { NixregError } from '../errors.js';
import type { Descriptor, Platform } from '../manifest/manifest.js';
import type { RegistryClient } from '../registry/client.js';

/** Config blobs are small documents; a larger one is not an image config. */
const MAX_CONFIG_BYTES = 8 << 20;

/** An image's config blob, verified against its descriptor. */
export async function readConfig(client: RegistryClient, config: Descriptor): Promise<Buffer> {
  const what = `config ${client.registry}/${client.repository}@${config.digest}`;
  if (config.size > MAX_CONFIG_BYTES) throw new NixregError(`${what} is ${config.size} bytes, more than an image config can be (${MAX_CONFIG_BYTES})`);
  const parts: Buffer[] = [];
  for await (const chunk of await client.getBlob(config.digest, { size: config.size })) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** The platform an image config declares (os, architecture, variant, os.version, os.features), as an index entry carries it. */
export function configPlatform(configBytes: Buffer, what: string): Platform {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new NixregError(`${what}: the config is not valid JSON`);
  }
  if (!c || typeof c.os !== 'string' || typeof c.architecture !== 'string' || !c.os || !c.architecture)
    throw new NixregError(`${what}: the config names no os and architecture, so its platform is unknown`);
  const p: Platform = { architecture: c.architecture, os: c.os };
  if (typeof c.variant === 'string' && c.variant) p.variant = c.variant;
  if (typeof c['os.version'] === 'string' && c['os.version']) p['os.version'] = c['os.version'];
  if (Array.isArray(c['os.features']) && c['os.features'].every((f) => typeof f === 'string') && c['os.features'].length)
    p['os.features'] = c['os.features'] as string[];
  return p;
}
