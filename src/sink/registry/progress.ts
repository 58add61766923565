import type { BlobStatus } from './blob-upload.js';

/** What is known about a blob when it starts: whether it is the image config (not a layer), its size. */
export interface BlobInfo {
  config?: boolean;
  size?: number;
}

/** The events a push reports about its layers; the terminal renderers are in src/cli/push-progress.ts. */
export interface PushProgress {
  /** How many layers (blobs) this push has; before the first layer event. */
  begin(total: number): void;
  layerStart(index: number, label: string, info?: BlobInfo): void;
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
