/**
 * Prefetching for the training loop: the next batches are drawn from the source while the current
 * step runs natively, off the JS thread.
 * @internal
 * @module
 */
import type { BatchSource, SourcedBatch } from './source.js';

/** Keeps up to `depth` batches in flight, drawing batch numbers `from` … `until` − 1 and no more. */
export class Prefetcher {
  readonly #queue: Promise<SourcedBatch>[] = [];
  #drawn: number;
  /** Milliseconds spent waiting in {@link take} for a batch that was not ready. */
  waitedMs = 0;

  constructor(
    private readonly source: BatchSource,
    private readonly depth: number,
    from: number,
    private readonly until: number,
  ) {
    this.#drawn = from;
  }

  /** Starts drawing batches until `depth` are in flight. */
  refill(): void {
    while (this.#queue.length < this.depth && this.#drawn < this.until) this.#draw();
  }

  #draw(): void {
    const batch = Promise.resolve(this.source.next());
    // A batch that fails while a step runs is not awaited yet: mark its rejection as handled so
    // Node does not end the process; take() still awaits the batch and throws its error.
    batch.catch(() => undefined);
    this.#queue.push(batch);
    this.#drawn++;
  }

  /** The next batch, in order, timing the wait; past `until` too (a skipped step trains on one more). */
  async take(): Promise<SourcedBatch> {
    this.refill();
    if (this.#queue.length === 0) this.#draw();
    const start = performance.now();
    const batch = await this.#queue.shift()!;
    this.waitedMs += performance.now() - start;
    return batch;
  }

  /** Waits for the batches still in flight (their decodes) to settle, whatever the outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#queue);
  }
}
