/**
 * Errors thrown by rils. Every error is a {@link RilsError} with a stable `code`; the subclasses
 * say what went wrong so callers can branch with `instanceof`.
 * @module
 */

/** The codes carried by {@link RilsError.code}. */
export type RilsErrorCode =
  | 'ERR_RILS_INPUT'
  | 'ERR_RILS_STATE'
  | 'ERR_RILS_WEIGHTS'
  | 'ERR_RILS_DEVICE'
  | 'ERR_RILS_NATIVE'
  | 'ERR_RILS_OUT_OF_MEMORY'
  | 'ERR_RILS_DISTRIBUTED';

/** Base class of every error rils throws or rejects with. */
export class RilsError extends Error {
  /** A stable, machine-readable code. */
  readonly code: RilsErrorCode;
  constructor(code: RilsErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument has the wrong type, size or value. Nothing was changed. */
export class RilsInputError extends RilsError {
  constructor(message: string) {
    super('ERR_RILS_INPUT', message);
  }
}

/** The object cannot do this now, e.g. it was disposed. */
export class RilsStateError extends RilsError {
  constructor(message: string) {
    super('ERR_RILS_STATE', message);
  }
}

/** A weight file is unreadable, corrupt, or belongs to another model shape. The model is unchanged. */
export class RilsWeightsError extends RilsError {
  constructor(message: string) {
    super('ERR_RILS_WEIGHTS', message);
  }
}

/** The requested device (e.g. CUDA) is not available in this build or machine. */
export class RilsDeviceError extends RilsError {
  constructor(message: string) {
    super('ERR_RILS_DEVICE', message);
  }
}

/** LibTorch failed while running a computation (out of memory included). */
export class RilsNativeError extends RilsError {
  constructor(message: string, code: 'ERR_RILS_NATIVE' | 'ERR_RILS_OUT_OF_MEMORY' = 'ERR_RILS_NATIVE') {
    super(code, message);
  }
}

/**
 * A data-parallel job cannot go on: the rendezvous failed, or a collective failed because another
 * rank exited or stalled past the timeout. The message names the lost rank when it can. This rank
 * should stop (its last checkpoint is intact); the job restarts from that checkpoint.
 */
export class RilsDistributedError extends RilsError {
  constructor(message: string) {
    super('ERR_RILS_DISTRIBUTED', message);
  }
}

/**
 * Turns an error from the addon (a plain Error with a `code`) into the matching class.
 * @internal
 */
export function fromNative(error: unknown): RilsError {
  if (error instanceof RilsError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_RILS_INPUT':
      return new RilsInputError(message);
    case 'ERR_RILS_STATE':
      return new RilsStateError(message);
    case 'ERR_RILS_WEIGHTS':
      return new RilsWeightsError(message);
    case 'ERR_RILS_DEVICE':
      return new RilsDeviceError(message);
    case 'ERR_RILS_OUT_OF_MEMORY':
      return new RilsNativeError(message, 'ERR_RILS_OUT_OF_MEMORY');
    case 'ERR_RILS_DISTRIBUTED':
      return new RilsDistributedError(message);
    default:
      return new RilsNativeError(message);
  }
}
