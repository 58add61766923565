import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/** Raw HTTP for the mock-registry tests: full control of headers and body (fetch hides too much). */
export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = any>(): T;
  header(name: string): string | undefined;
}

export interface ReqOpts {
  headers?: Record<string, string | number>;
  body?: Buffer | string | Readable;
  ca?: string | Buffer;
  timeoutMs?: number;
}

export function req(method: string, url: string, opts: ReqOpts = {}): Promise<Res> {
  const u = new URL(url);
  const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = fn(u, { method, headers: opts.headers, ...(opts.ca ? { ca: opts.ca } : {}), timeout: opts.timeoutMs ?? 20_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { partial: Buffer.concat(parts) })));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body,
          json: () => JSON.parse(body.toString('utf8')),
          header: (n) => {
            const v = res.headers[n.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          },
        });
      });
    });
    r.on('timeout', () => r.destroy(new Error('client timeout')));
    r.on('error', reject);
    const b = opts.body;
    if (b === undefined) r.end();
    else if (typeof b === 'string' || Buffer.isBuffer(b)) r.end(b);
    else b.pipe(r);
  });
}

export const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** deterministic pseudo-random bytes */
export function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let block = Buffer.alloc(0);
  for (let i = 0, c = 0; i < n; i++) {
    if (i % 32 === 0) block = createHash('sha256').update(`${seed}:${c++}`).digest();
    out[i] = block[i % 32]!;
  }
  return out;
}

export const errCodes = (r: Res): string[] => r.json<{ errors: Array<{ code: string }> }>().errors.map((e) => e.code);

/** Upload a blob monolithically (POST ?digest=); returns its digest. */
export async function upload(base: string, name: string, data: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const d = sha(data);
  const r = await req('POST', `${base}/v2/${name}/blobs/uploads/?digest=${d}`, {
    body: data,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length, ...headers },
  });
  if (r.status !== 201) throw new Error(`upload failed: ${r.status} ${r.body}`);
  return d;
}

export async function putManifest(
  base: string,
  name: string,
  ref: string,
  doc: unknown,
  mediaType: string,
  headers: Record<string, string> = {},
): Promise<Res> {
  const body = Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc));
  return req('PUT', `${base}/v2/${name}/manifests/${ref}`, { body, headers: { 'Content-Type': mediaType, ...headers } });
}

export function imageManifest(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}, oci = true) {
  return {
    schemaVersion: 2,
    mediaType: oci ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json',
    config: {
      mediaType: oci ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json',
      size: config.length,
      digest: sha(config),
    },
    layers: layers.map((l) => ({
      mediaType: oci ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      size: l.length,
      digest: sha(l),
    })),
    ...extra,
  };
}
