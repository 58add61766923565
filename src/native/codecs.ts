import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The optional native decoders (src/native/codecs.c, built by scripts/build-native.mjs into dist/native/codecs.node):
 * zstd over libzstd, gzip over ISA-L. Absent (no compiler or -dev package at build time, another platform,
 * NIXREG_NO_NATIVE=1), nixreg decodes with fzstd and node:zlib, whose output is the same bytes; NIXREG_DEBUG says
 * once which one a process uses.
 */
export type NativeKind = 'zstd' | 'gzip' | 'deflate';

export type DecodeResult = [number, boolean, ...Buffer[]];

export interface NativeCodecs {
  kinds: NativeKind[];
  /** `level`: for 'deflate' (gzip encoder), 1–9. */
  open(kind: NativeKind, level?: number): unknown;
  /**
   * Decodes input[offset..] on the thread pool until it is used up and nothing more comes out (drained), about
   * maxOut bytes came out, or what is left is too short for another step; then cb(err, [consumed, drained,
   * ...chunks]). One call per handle at a time.
   */
  decode(handle: unknown, input: Buffer, offset: number, maxOut: number, cb: (err: Error | undefined, r: DecodeResult) => void): void;
  /**
   * decode, but into `out` (from its start, at most out.length bytes; not to be touched until cb runs): cb(err,
   * [consumed, drained, produced]). Absent from an addon built before it existed.
   */
  decodeInto?(handle: unknown, input: Buffer, offset: number, out: Buffer, cb: (err: Error | undefined, r: [number, boolean, number]) => void): void;
  /** Throws when the input ended inside a frame or gzip member. */
  finish(handle: unknown): void;
  /** 'deflate' builds only: the decode calls after this one finish the gzip stream. */
  endInput?(handle: unknown): void;
  /** 'deflate' builds only: one whole gzip stream of `input`, synchronously. */
  deflateSync?(input: Buffer, level: number): Buffer;
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

const FALLBACK: Record<NativeKind, string> = { zstd: 'fzstd', gzip: 'node:zlib', deflate: 'pako' };

const debug = (line: string) => {
  if (process.env.NIXREG_DEBUG) process.stderr.write(`nixreg: debug: ${line}\n`);
};

/** The native decoders when this install has one for `kind` (else undefined, and one debug line per kind). */
export function nativeDecoder(kind: NativeKind): NativeCodecs | undefined {
  const codecs = load();
  const ok = !!codecs && codecs.kinds.includes(kind);
  if (!announced.has(kind)) {
    announced.add(kind);
    debug(
      ok
        ? `${kind} ${kind === 'deflate' ? 'compresses with the native encoder' : 'layers decode with the native decoder'}`
        : `no native ${kind} ${kind === 'deflate' ? 'encoder' : 'decoder'} (${process.env.NIXREG_NO_NATIVE === '1' ? 'NIXREG_NO_NATIVE=1' : 'dist/native/codecs.node absent or without it'}): using ${FALLBACK[kind]}`,
    );
  }
  return ok ? codecs! : undefined;
}
