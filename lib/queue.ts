/**
 * Runs tasks one at a time, in submission order.
 * @internal
 * @module
 */
import { RilsStateError } from './errors.js';

export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #closed: string | null = null;

  /** Queues `task`; it starts when every earlier task has settled. */
  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new RilsStateError(this.#closed));
    const result = this.#tail.then(() => {
      if (this.#closed) throw new RilsStateError(this.#closed);
      return task();
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Tasks not yet started (and later ones) reject with `reason`. */
  close(reason: string): void {
    this.#closed ??= reason;
  }
}
