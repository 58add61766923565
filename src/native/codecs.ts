import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The optional native decoders (src/native/codecs.c, built by scripts/build-native.mjs into dist/native/codecs.node):
 * zstd over libzstd, gzip over ISA-L. Absent (no compiler or -dev package at build time, another platform,
 * NIXREG_NO_NATIVE=1), nixreg decodes with fzstd and node:zlib, whose output is the same bytes; NIXREG_DEBUG says
 * once which one a process uses.
 */
export type NativeKind = 'zstd' | 'gzip';

export type DecodeResult = [number, boolean, ...Buffer[]];

export interface NativeCodecs {
  kinds: NativeKind[];
  open(kind: NativeKind): unknown;
  /**
   * Decodes input[offset..] on the thread pool until it is used up and nothing more comes out (drained), about
   * maxOut bytes came out, or what is left is too short for another step; then cb(err, [consumed, drained,
   * ...chunks]). One call per handle at a time.
   */
  decode(handle: unknown, input: Buffer, offset: number, maxOut: number, cb: (err: Error | undefined, r: DecodeResult) => void): void;
  /** Throws when the input ended inside a frame or gzip member. */
  finish(handle: unknown): void;
  /** sha256 with Node's own OpenSSL, hashing on the thread pool (absent when the addon was built without it). */
  sha256Open?: () => unknown;
  /** Hashes the buffers in order, then cb(err). One update per handle at a time; the buffers must not change. */
  sha256Update?: (handle: unknown, buffers: Buffer[], cb: (err?: Error) => void) => void;
  /** The hex digest (once, after the last update). */
  sha256Digest?: (handle: unknown) => string;
}

// tsc output (dist/src/native/), the bundle (dist/bundle/) and the sources run by vitest (src/native/)
const CANDIDATES = ['../../native/codecs.node', '../native/codecs.node', '../../dist/native/codecs.node'];

let loaded: NativeCodecs | null | undefined;
const announced = new Set<NativeKind>();

function load(): NativeCodecs | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.NIXREG_NO_NATIVE === '1') return loaded;
  const require = createRequire(import.meta.url);
  for (const rel of CANDIDATES) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      loaded = require(path) as NativeCodecs;
      break;
    } catch (e) {
      debug(`cannot load ${path} (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return loaded;
}

const debug = (line: string) => {
  if (process.env.NIXREG_DEBUG) process.stderr.write(`nixreg: debug: ${line}\n`);
};

/** The native sha256 when this install has it (else undefined, and one debug line). */
export function nativeSha256(): Required<Pick<NativeCodecs, 'sha256Open' | 'sha256Update' | 'sha256Digest'>> | undefined {
  const codecs = load();
  const ok = !!codecs?.sha256Open && !!codecs.sha256Update && !!codecs.sha256Digest;
  if (!announcedSha) {
    announcedSha = true;
    debug(ok ? 'sha256 of downloads runs on the thread pool' : 'no native sha256: hashing downloads on the main thread (node:crypto)');
  }
  return ok ? (codecs as Required<NativeCodecs>) : undefined;
}
let announcedSha = false;

/** The native decoders when this install has one for `kind` (else undefined, and one debug line per kind). */
export function nativeDecoder(kind: NativeKind): NativeCodecs | undefined {
  const codecs = load();
  const ok = !!codecs && codecs.kinds.includes(kind);
  if (!announced.has(kind)) {
    announced.add(kind);
    debug(ok ? `${kind} layers decode with the native decoder` : `no native ${kind} decoder (${process.env.NIXREG_NO_NATIVE === '1' ? 'NIXREG_NO_NATIVE=1' : 'dist/native/codecs.node absent or without it'}): using ${kind === 'zstd' ? 'fzstd' : 'node:zlib'}`);
  }
  return ok ? codecs! : undefined;
}
