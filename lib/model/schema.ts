/**
 * The addon's field tables (native/model/fields.h): every model, training and statistics field
 * with its type, default and allowed values, declared once in C++. Options are validated and
 * converted (camelCase ↔ the reference's snake_case) from these tables; the TypeScript interfaces
 * that document them are checked against them by test/schema.test.ts.
 * @internal
 * @module
 */
import { native } from '../addon/binding.js';
import type { NativeConfig, NativeFieldInfo } from '../addon/binding.js';
import { RilsInputError } from '../errors.js';
import { camelCase, describe } from '../validate.js';

const schema = native.schema();

/** A field of a table, by its camelCase name. */
export interface FieldSpec extends NativeFieldInfo {
  /** The camelCase name lib/ uses. */
  key: string;
}

function byKey(fields: NativeFieldInfo[]): ReadonlyMap<string, FieldSpec> {
  return new Map(fields.map((f) => [camelCase(f.name), { ...f, key: camelCase(f.name) }]));
}

/** The model config fields (RILS_CONFIG_FIELDS). */
export const CONFIG_FIELDS = byKey(schema.config);
/** The training options (optimiser, loss, trainer). */
export const TRAIN_FIELDS = byKey(schema.train);
/** How a model runs (RILS_RUN_FIELDS: precision). */
export const RUN_FIELDS = byKey(schema.run);
/** A data-parallel job's numeric options (RILS_DISTRIBUTED_FIELDS). */
export const DISTRIBUTED_FIELDS = byKey(schema.distributed);
/** What a step reports (RILS_STEP_STATS), by camelCase name. */
export const STAT_FIELDS: ReadonlyMap<string, { name: string; type: string }> = new Map(
  schema.stats.map((s) => [camelCase(s.name), s]),
);
/** The preset names, and each preset's fields in snake_case. */
export const PRESETS: Readonly<Record<string, NativeConfig>> = schema.presets;

/** "an integer >= 1", "a number in [0, 1)", "a boolean", "'rils' or 'clip'": what a field accepts. */
export function expected(f: NativeFieldInfo): string {
  if (f.type === 'bool') return 'a boolean';
  if (f.type === 'choice') {
    const names = (f.choices ?? []).map((c) => `'${c}'`);
    return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join('');
  }
  const kind = f.type === 'int' ? 'an integer' : 'a number';
  const lower = Number.isFinite(f.min),
    upper = Number.isFinite(f.max);
  if (lower && upper) return `${kind} in ${f.minOpen ? '(' : '['}${f.min}, ${f.max}${f.maxOpen ? ')' : ']'}`;
  if (lower) return `${kind} ${f.minOpen ? '>' : '>='} ${f.min}`;
  if (upper) return `${kind} ${f.maxOpen ? '<' : '<='} ${f.max}`;
  return f.type === 'int' ? 'an integer' : 'a finite number';
}

/** Whether `value` is of the field's type and in its range. */
export function fieldAllows(f: NativeFieldInfo, value: unknown): boolean {
  if (f.type === 'bool') return typeof value === 'boolean';
  if (f.type === 'choice') return typeof value === 'string' && (f.choices ?? []).includes(value);
  return (
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (f.type !== 'int' || Number.isSafeInteger(value)) &&
    (f.minOpen ? value > f.min : value >= f.min) &&
    (f.maxOpen ? value < f.max : value <= f.max)
  );
}

/** `value` checked against the field's type and range; a RilsInputError naming `what` otherwise. */
export function checkField(f: NativeFieldInfo, value: unknown, what: string): number | boolean | string {
  if (!fieldAllows(f, value))
    throw new RilsInputError(`Expected ${expected(f)} for ${what} but received ${describe(value)}`);
  return value as number | boolean | string;
}

/** snake_case keys → camelCase keys, values unchanged. */
export function camelKeys<T>(record: Record<string, unknown>): T {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [camelCase(k), v])) as T;
}
