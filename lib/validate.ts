/**
 * Small checks with one message form: "Expected X for Y but received Z".
 * @internal
 * @module
 */
import { RilsInputError } from './errors.js';

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value))
    return `${value.constructor.name}(${(value as unknown as { length?: number }).length ?? value.byteLength})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** `record[key]` when `record` has it as its own property (never one inherited from Object.prototype). */
export function own(record: object, key: string): unknown {
  return Object.hasOwn(record, key) ? (record as Record<string, unknown>)[key] : undefined;
}

export function invalid(expected: string, what: string, value: unknown): RilsInputError {
  return new RilsInputError(`Expected ${expected} for ${what} but received ${describe(value)}`);
}

export function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

export function checkInteger(value: unknown, what: string, min = -Infinity): number {
  if (!isInteger(value) || value < min)
    throw invalid(min > -Infinity ? `an integer >= ${min}` : 'an integer', what, value);
  return value;
}

export function checkNumber(value: unknown, what: string): number {
  if (!isFiniteNumber(value)) throw invalid('a finite number', what, value);
  return value;
}

export function checkBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw invalid('a boolean', what, value);
  return value;
}

export function checkPlainObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('an object', what, value);
  return value as Record<string, unknown>;
}

/**
 * A typed array of the given class and exact length over a fixed-length buffer: a resizable
 * ArrayBuffer or growable SharedArrayBuffer is refused (a view of it can change length), and a
 * detached one says so.
 */
export function checkTypedArray<T extends ArrayBufferView>(
  value: unknown,
  types: readonly (abstract new (...args: never[]) => T)[],
  length: number,
  what: string,
): T {
  const names = types.map((t) => t.name).join(' or ');
  if (!types.some((t) => value instanceof t)) throw invalid(`a ${names}`, what, value);
  const buffer = (value as ArrayBufferView).buffer as ArrayBufferLike & { resizable?: boolean; growable?: boolean };
  if (buffer.resizable === true || buffer.growable === true) {
    throw new RilsInputError(
      `Expected ${what} over a fixed-length buffer but it is resizable or growable; pass a copy ` +
        `(new ${value!.constructor.name}(array))`,
    );
  }
  const actual = (value as unknown as { length: number }).length;
  if (actual !== length) {
    const detached = buffer.byteLength === 0 && length > 0 ? ' (its ArrayBuffer is detached or empty)' : '';
    throw new RilsInputError(`${invalid(`a ${names} of ${length} elements`, what, value).message}${detached}`);
  }
  return value as T;
}

/** camelCase → snake_case ("visionWidth" → "vision_width"), the reference's field names. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** snake_case → camelCase. */
export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
