import { Readable, Writable } from 'node:stream';
import { extract } from 'tar-stream';
import { encodePythonPaxHeader, endOfArchive, padTo512, type PyTarInfo } from '../../src/tar/python-pax.js';
import { flattenLayers, type FlattenStats } from '../../src/export/flatten.js';

/** Hand-made layer entries for the export tests (defaults: root-owned, mtime 1000). */
export type E =
  | { f: string; data?: string | Buffer; mode?: number; uid?: number; gid?: number; mtime?: number }
  | { d: string; mode?: number; uid?: number; gid?: number; mtime?: number }
  | { s: string; to: string }
  | { h: string; to: string }
  | { raw: Buffer };

export function layer(...entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if ('raw' in e) {
      parts.push(e.raw);
      continue;
    }
    const base = { uid: 0, gid: 0, mtime: 1000, size: 0 };
    let info: PyTarInfo;
    let data: Buffer = Buffer.alloc(0);
    if ('f' in e) {
      data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '');
      info = { ...base, name: e.f, type: 'file', mode: e.mode ?? 0o644, size: data.length, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? 1000 };
    } else if ('d' in e) info = { ...base, name: e.d, type: 'dir', mode: e.mode ?? 0o755, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? 1000 };
    else if ('s' in e) info = { ...base, name: e.s, type: 'symlink', mode: 0o777, linkname: e.to };
    else info = { ...base, name: e.h, type: 'hardlink', mode: 0o644, linkname: e.to };
    parts.push(encodePythonPaxHeader(info), data, Buffer.alloc(padTo512(data.length)));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, endOfArchive(body.length)]);
}

/** Flatten in-memory layers (bottom first) into one buffer. */
export async function flatten(layers: Buffer[], opens?: number[]): Promise<{ tar: Buffer; stats: FlattenStats }> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  const stats = await flattenLayers(
    {
      layerCount: layers.length,
      openLayer: async (i) => {
        opens?.push(i);
        // small chunks, so header/data boundaries fall inside chunks too
        const b = layers[i]!;
        const parts: Buffer[] = [];
        for (let o = 0; o < b.length; o += 700) parts.push(b.subarray(o, o + 700));
        return Readable.from(parts);
      },
      layerLabel: (i) => `L${i}`,
    },
    sink,
  );
  return { tar: Buffer.concat(chunks), stats };
}

export interface OutEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  data: string;
}

/** Parse a tar with tar-stream (an independent reader), in order. */
export async function list(tar: Buffer): Promise<OutEntry[]> {
  const out: OutEntry[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({
          name: h.name,
          type: h.type ?? 'file',
          mode: h.mode ?? 0,
          uid: h.uid ?? 0,
          gid: h.gid ?? 0,
          mtime: h.mtime ? Math.round(h.mtime.getTime() / 1000) : 0,
          linkname: h.linkname ?? null,
          data: Buffer.concat(chunks).toString('latin1'),
        });
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(tar);
  await done;
  return out;
}

export const names = (es: OutEntry[]): string[] => es.map((e) => e.name);
export const byName = (es: OutEntry[], n: string): OutEntry => {
  const e = es.find((x) => x.name === n);
  if (!e) throw new Error(`no entry ${n} in ${JSON.stringify(names(es))}`);
  return e;
};
