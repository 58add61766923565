import { createRequire } from 'node:module';
import { FRAME_INPUT } from '../../src/compression/zstd-encoder.js';

/** The reference for nixreg's zstd: every 4 MiB of input one frame of the pinned WebAssembly zstd, in order (main thread). */
export async function zstdFrames(input: Uint8Array, level = 3): Promise<{ bytes: Buffer; frames: number }> {
  const zstd = createRequire(import.meta.url)('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress(b: Uint8Array, l: number): Uint8Array };
  await zstd.init();
  const frames: Uint8Array[] = [];
  for (let o = 0; o < input.length || frames.length === 0; o += FRAME_INPUT) frames.push(zstd.compress(input.subarray(o, o + FRAME_INPUT), level));
  return { bytes: Buffer.concat(frames), frames: frames.length };
}
