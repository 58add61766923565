import { createHash } from 'node:crypto';
import { nativeSha256 } from '../native/codecs.js';

/**
 * sha256 of a stream's chunks, off the main thread when the native addon has it: chunks are queued and handed to
 * the thread pool in batches (one batch in flight), so the main thread moves bytes while another core hashes
 * them. Without the addon: node:crypto inline. Either way the digest is the same. The chunks must not be changed
 * after update() (stream chunks are not).
 */
export class StreamHash {
  private readonly native = nativeSha256();
  private readonly handle: unknown;
  private readonly inline = this.native ? undefined : createHash('sha256');
  private queued: Buffer[] = [];
  private busy = false;
  private failure: Error | undefined;
  private idle: (() => void) | undefined;

  constructor() {
    this.handle = this.native?.sha256Open();
  }

  update(chunk: Buffer): void {
    if (this.inline) return void this.inline.update(chunk);
    this.queued.push(chunk);
    if (!this.busy) this.flush();
  }

  /** 'sha256:<hex>' once every chunk is hashed. */
  async digest(): Promise<string> {
    if (this.inline) return 'sha256:' + this.inline.digest('hex');
    while (this.busy) await new Promise<void>((r) => (this.idle = r));
    if (this.failure) throw this.failure;
    return 'sha256:' + this.native!.sha256Digest(this.handle);
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    this.busy = true;
    this.native!.sha256Update(this.handle, batch, (err) => {
      if (err) this.failure ??= err;
      if (this.queued.length) return this.flush();
      this.busy = false;
      const wake = this.idle;
      this.idle = undefined;
      wake?.();
    });
  }
}
