import { createHash, type Hash } from 'node:crypto';
import { WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { hexOf } from '../digest/sha256.js';
import { integrityError } from '../errors.js';
import { goTarFile, goTarHeader, goTarSymlink, padding, TAR_TRAILER } from '../tar/go-ustar.js';
import { goSortedObject, goString } from './go-json.js';
import { layerFileName, legacyLayers } from './legacy-ids.js';
import { drained, writableGone } from '../util/drained.js';

/**
 * The docker-archive sink: writes what `skopeo copy ... docker-archive:PATH:NAME:TAG` (containers/image
 * v5.6–v5.36, skopeo 1.9.3) writes, byte for byte (containers/image docker/internal/tarfile/writer.go). Input is already uncompressed, so the bytes
 * never depend on how the registry compressed the layers.
 *
 * The writer is a pure sequential byte producer into any Writable (a file, stdout, or a hashing sink for
 * prefetch); it hashes what it writes (sha256 of the whole archive) so callers never read the output again.
 * Each layer must arrive with its uncompressed size known, because the tar header precedes the data: the
 * copy pipeline (src/image/copy.ts) gets there by spooling (see layer-spool.ts for the choice and figures).
 */

export interface ArchiveLayer {
  diffID: string; // sha256:<hex> of the uncompressed bytes (already verified by the producer)
  size: number; // uncompressed size
  open(): Readable; // the uncompressed bytes, exactly `size` of them
  file?: string; // the same bytes in a file (a spool): copied with reused buffers where the output allows it
  release?(): Promise<void>; // called once the bytes are in the archive (e.g. delete a spool file)
}

export interface RepoTag {
  name: string; // fully normalised, e.g. docker.io/library/nginx
  tag: string;
}

export interface DockerArchiveInput {
  configBytes: Buffer;
  configDigest: string;
  /** Uncompressed layer digests in manifest order, repeats included (they give manifest.json and legacy IDs). */
  diffIDs: readonly string[];
  /** The distinct layers, in order of first appearance in `diffIDs`. */
  layers: AsyncIterable<ArchiveLayer>;
  repoTags: readonly RepoTag[];
  /**
   * Hash the archive as it is written (default true). `nixreg pull --quiet` without --sha256/--json has no use
   * for the hash: skipping it saves a sha256 pass over every layer byte (~0.4 s CPU for 512 MiB here).
   */
  hash?: boolean;
}

export interface ArchiveResult {
  size: number;
  /** flat sha256 of the archive bytes; null when the input asked for no hash */
  sha256: Buffer | null;
}

/**
 * Mark for outputs that are done with a buffer once its write callback has run (they hash and drop it, or write it
 * to a descriptor). A file WriteStream is one; a PassThrough or a compressor is not: it hands the same memory on,
 * to be read later.
 */
export const REUSABLE_WRITES = Symbol('nixreg.reusableWrites');
const reusesWrites = (w: Writable): boolean => w instanceof WriteStream || (w as { [REUSABLE_WRITES]?: boolean })[REUSABLE_WRITES] === true;
const FILE_CHUNK = 1 << 20;

const CLOSED = 'output closed while writing';

/** Write a Buffer honouring backpressure; hash (unless told not to) and count it. */
class Out {
  readonly hash: Hash | null;
  size = 0;
  constructor(
    private readonly w: Writable,
    hash: boolean,
  ) {
    this.hash = hash ? createHash('sha256') : null;
    this.reusesWrites = reusesWrites(w);
  }
  readonly reusesWrites: boolean;
  async write(b: Buffer): Promise<void> {
    if (!b.length) return;
    this.hash?.update(b);
    this.size += b.length;
    if (!this.w.write(b)) await drained(this.w, CLOSED);
  }
  /**
   * Copy a file through two buffers allocated once; returns the number of bytes copied. Why: every new Buffer is V8
   * "external memory", and each few dozen MB of it forces a full GC. Reading a 512 MiB pull's spool in fresh 1 MiB
   * chunks cost 60+ mark-compacts, ~1 s of CPU on 2 cores. Only for outputs marked by `reusesWrites`.
   */
  async pumpFile(path: string): Promise<number> {
    const fh = await open(path, 'r');
    const bufs = [Buffer.allocUnsafeSlow(FILE_CHUNK), Buffer.allocUnsafeSlow(FILE_CHUNK)];
    let landed: Promise<void> = Promise.resolve(); // the write of the other buffer
    let n = 0;
    try {
      for (let i = 0; ; i ^= 1) {
        const { bytesRead } = await fh.read(bufs[i]!, 0, FILE_CHUNK, null);
        if (bytesRead === 0) break;
        await landed; // the other buffer is written out: it may be refilled next round
        landed = this.writeAndLand(bufs[i]!.subarray(0, bytesRead));
        landed.catch(() => {}); // handled now (awaited below): a write error during the next read is not unhandled
        n += bytesRead;
      }
      await landed;
    } finally {
      landed.catch(() => {}); // a read failure wins; the write's own error is moot
      await fh.close();
    }
    return n;
  }
  /** Write and resolve once the output is done with `b` (its write callback). */
  private writeAndLand(b: Buffer): Promise<void> {
    // a write to a stream already gone would fail with ERR_STREAM_DESTROYED; its own error says what happened
    const gone = writableGone(this.w, CLOSED);
    if (gone) return Promise.reject(gone);
    this.hash?.update(b);
    this.size += b.length;
    return new Promise((resolve, reject) => this.w.write(b, (err) => (err ? reject(err) : resolve())));
  }
  /** Copy a stream; returns the number of bytes copied. */
  async pump(r: Readable): Promise<number> {
    let n = 0;
    for await (const chunk of r) {
      n += (chunk as Buffer).length;
      await this.write(chunk as Buffer);
    }
    return n;
  }
}

export async function writeDockerArchive(
  output: Writable,
  input: DockerArchiveInput,
  onLayerWritten?: (diffID: string, size: number) => void,
): Promise<ArchiveResult> {
  const out = new Out(output, input.hash !== false);
  const expected = [...new Set(input.diffIDs)];
  let k = 0;
  // 1. layer files, each distinct diffID once, in manifest order
  for await (const layer of input.layers) {
    if (layer.diffID !== expected[k]) throw new Error(`internal: layer ${k} is ${layer.diffID}, expected ${expected[k]}`);
    k++;
    await out.write(goTarHeader({ name: layerFileName(layer.diffID), type: 'file', size: layer.size }));
    const n = layer.file && out.reusesWrites ? await out.pumpFile(layer.file) : await out.pump(layer.open());
    if (n !== layer.size) throw integrityError(`layer ${layer.diffID}: expected ${layer.size} uncompressed bytes, got ${n}`);
    await out.write(padding(n));
    await layer.release?.();
    onLayerWritten?.(layer.diffID, n);
  }
  if (k !== expected.length) throw new Error(`internal: ${expected.length - k} layers were never supplied`);
  for (const b of archiveTail(input)) await out.write(b);
  return { size: out.size, sha256: out.hash?.digest() ?? null };
}

/** Everything after the layer files: config, legacy layer directories, manifest.json, repositories, end of archive. */
export function archiveTail(input: Pick<DockerArchiveInput, 'configBytes' | 'configDigest' | 'diffIDs' | 'repoTags'>): Buffer[] {
  const parts: Buffer[] = [];
  // 2. the config, verbatim
  parts.push(goTarFile(`${hexOf(input.configDigest)}.json`, input.configBytes));
  // 3. legacy layer directories (no directory entries, just the three files)
  const legacy = legacyLayers(input.diffIDs, input.configBytes);
  const seen = new Set<string>();
  for (const l of legacy) {
    if (seen.has(l.id)) continue;
    seen.add(l.id);
    parts.push(
      goTarSymlink(`${l.id}/layer.tar`, `../${layerFileName(l.diffID)}`),
      goTarFile(`${l.id}/VERSION`, Buffer.from('1.0')),
      goTarFile(`${l.id}/json`, l.json),
    );
  }
  // 4. manifest.json: Go struct field order Config, RepoTags, Layers
  const tags = input.repoTags.map((t) => `${t.name}:${t.tag}`);
  const manifest =
    `[{"Config":${goString(`${hexOf(input.configDigest)}.json`)},` +
    `"RepoTags":[${tags.map(goString).join(',')}],` +
    `"Layers":[${input.diffIDs.map((d) => goString(layerFileName(d))).join(',')}]}]`;
  parts.push(goTarFile('manifest.json', Buffer.from(manifest)));
  // 5. repositories: name → tag → top legacy ID, only when there is a layer
  const repos = new Map<string, Record<string, string>>();
  const top = legacy.at(-1);
  if (top) for (const t of input.repoTags) repos.set(t.name, { ...(repos.get(t.name) ?? {}), [t.tag]: goString(top.id) });
  const reposObj: Record<string, Buffer> = {};
  for (const [name, m] of repos) reposObj[name] = goSortedObject(m);
  parts.push(goTarFile('repositories', goSortedObject(reposObj)));
  // 6. two zero blocks, no record padding
  parts.push(TAR_TRAILER);
  return parts;
}

/**
 * The archive laid out for layers of known uncompressed sizes (the distinct layers, in order): where each layer's
 * data goes, and every other byte of the archive with its offset. The same bytes as writeDockerArchive, for an
 * output written at positions (a file: layers can then be written in parallel, straight into place).
 */
export function archiveLayout(
  input: Pick<DockerArchiveInput, 'configBytes' | 'configDigest' | 'diffIDs' | 'repoTags'>,
  sizes: readonly number[],
): { dataOffsets: number[]; pieces: Array<{ offset: number; bytes: Buffer }>; size: number } {
  const distinct = [...new Set(input.diffIDs)];
  if (distinct.length !== sizes.length) throw new Error(`internal: ${sizes.length} sizes for ${distinct.length} layers`);
  const dataOffsets: number[] = [];
  const pieces: Array<{ offset: number; bytes: Buffer }> = [];
  let at = 0;
  distinct.forEach((diffID, k) => {
    const header = goTarHeader({ name: layerFileName(diffID), type: 'file', size: sizes[k]! });
    pieces.push({ offset: at, bytes: header });
    at += header.length;
    dataOffsets.push(at);
    at += sizes[k]!;
    const pad = padding(sizes[k]!);
    if (pad.length) pieces.push({ offset: at, bytes: pad });
    at += pad.length;
  });
  for (const bytes of archiveTail(input)) {
    pieces.push({ offset: at, bytes });
    at += bytes.length;
  }
  return { dataOffsets, pieces, size: at };
}
