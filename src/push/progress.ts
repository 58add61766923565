import type { BlobStatus } from './blob-upload.js';

/** The events a push reports about its layers; the terminal renderers are in src/cli/push-progress.ts. */
export interface PushProgress {
  /** How many layers (blobs) this push has; before the first layer event. */
  begin(total: number): void;
  layerStart(index: number, label: string): void;
  layerUploading(index: number): void;
  layerBytes(index: number, n: number): void;
  layerDone(index: number, status: BlobStatus, digest: string, blobSize: number, from?: string): void;
  info(line: string): void;
  done(): void;
}


export const silentProgress: PushProgress = {
  begin() {},
  layerStart() {},
  layerUploading() {},
  layerBytes() {},
  layerDone() {},
  info() {},
  done() {},
};
