import type { Writable } from 'node:stream';

/**
 * Why `w` takes no more writes: its error, or `closedMessage` once it is destroyed or closed; undefined while it
 * takes them. A stream in that state emits nothing more, so waiting on it for an event would wait forever.
 */
export function writableGone(w: Writable, closedMessage: string): Error | undefined {
  if (w.errored) return w.errored;
  if (w.destroyed || w.closed) return new Error(closedMessage);
  return undefined;
}

/**
 * Wait until `w` wants more data after a write() that returned false ('drain'). Rejects with its error, or with
 * `closedMessage` when it closes first or is already gone (writableGone).
 */
export function drained(w: Writable, closedMessage: string): Promise<void> {
  const gone = writableGone(w, closedMessage);
  if (gone) return Promise.reject(gone);
  return new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      w.off('drain', onDrain);
      w.off('error', onError);
      w.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onError = (e: Error) => settle(e);
    const onClose = () => settle(w.errored ?? new Error(closedMessage));
    w.on('drain', onDrain);
    w.on('error', onError);
    w.on('close', onClose);
  });
}
