/**
 * Runs tasks one at a time, in submission order.
 * @internal
 * @module
 */
import { RilsStateError } from '../errors.js';

export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #closed: string | null = null;

  /**
   * Queues `task`; it starts when every earlier task has settled, or at once when none is pending
   * (so a call made before {@link close} on an idle queue is already running, and finishes).
   */
  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new RilsStateError(this.#closed));
    const start = (): Promise<T> => {
      if (this.#closed) return Promise.reject(new RilsStateError(this.#closed));
      return task();
    };
    const result = this.#pending === 0 ? start() : this.#tail.then(start);
    this.#pending++;
    this.#tail = result.catch(() => undefined).finally(() => this.#pending--);
    return result;
  }

  /** Tasks not yet started (and later ones) reject with `reason`. */
  close(reason: string): void {
    this.#closed ??= reason;
  }
}
