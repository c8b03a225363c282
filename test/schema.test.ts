// The hand-written TypeScript interfaces (documented for users) against the native field tables
// they describe: a field missing on either side, or of another type, fails here.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';
import ts from 'typescript';

import { OPTION_ALIASES, RUN_OPTIONS, isOptionName } from '../lib/model/options.js';
import {
  CONFIG_FIELDS,
  DISTRIBUTED_FIELDS,
  PRESETS,
  RUN_FIELDS,
  STAT_FIELDS,
  TRAIN_FIELDS,
  checkField,
  expected,
} from '../lib/model/schema.js';
import { camelCase } from '../lib/validate.js';

const lib = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib');
const program = ts.createProgram(
  [path.join(lib, 'model/options.ts'), path.join(lib, 'types.ts'), path.join(lib, 'train/distributed.ts')],
  { strict: true },
);
const checker = program.getTypeChecker();

/** The interface or type alias named `name` declared in lib/<file>. */
function declared(file: string, name: string): ts.Type {
  const source = program.getSourceFile(path.join(lib, file))!;
  const decl = source.statements.find(
    (s): s is ts.InterfaceDeclaration | ts.TypeAliasDeclaration =>
      (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && s.name.text === name,
  );
  if (!decl) throw new Error(`${name} is not declared in lib/${file}`);
  return checker.getTypeAtLocation(decl.name);
}

/** property → its type as written ('number', 'boolean', '[number, number]'), optionality removed. */
function properties(file: string, name: string): Map<string, string> {
  const type = declared(file, name);
  const decl = program.getSourceFile(path.join(lib, file))!;
  return new Map(
    checker
      .getPropertiesOfType(type)
      .map((p) => [p.name, typeText(checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(p, decl)))]),
  );
}

/** A type as written, with a union of string literals spelled out (not by its alias's name). */
function typeText(type: ts.Type): string {
  if (type.isUnion() && type.types.every((u) => u.isStringLiteral())) {
    return type.types.map((u) => `"${(u as ts.StringLiteralType).value}"`).join(' | ');
  }
  return checker.typeToString(type);
}

/** The TypeScript type a field's values have: a choice is the union of its names. */
const tsType = (f: { type: string; choices?: string[] }) =>
  f.type === 'bool' ? 'boolean' : f.type === 'choice' ? f.choices!.map((c) => `"${c}"`).join(' | ') : 'number';

function sameFields(
  t: import('ava').ExecutionContext,
  actual: Map<string, string>,
  wanted: Map<string, string>,
  what: string,
) {
  const missing = [...wanted.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !wanted.has(k));
  t.deepEqual(missing, [], `${what}: native fields missing from the interface`);
  t.deepEqual(extra, [], `${what}: interface fields the native table does not have`);
  for (const [k, type] of wanted) if (actual.has(k)) t.is(actual.get(k), type, `${what}.${k}`);
}

test('ModelConfig declares every native config field, with its type', (t) => {
  const wanted = new Map([...CONFIG_FIELDS].map(([k, f]) => [k, tsType(f)]));
  sameFields(t, properties('model/options.ts', 'ModelConfig'), wanted, 'ModelConfig');
});

test('TrainingOptions declares every native training field (betas for beta1 and beta2), with its type', (t) => {
  const aliased = new Set(Object.values(OPTION_ALIASES).flat().map(camelCase));
  const wanted = new Map([...TRAIN_FIELDS].filter(([k]) => !aliased.has(k)).map(([k, f]) => [k, tsType(f)]));
  wanted.set('betas', '[number, number]');
  sameFields(t, properties('model/options.ts', 'TrainingOptions'), wanted, 'TrainingOptions');
});

test('TrainStats declares every native step statistic, with its type', (t) => {
  const wanted = new Map([...STAT_FIELDS].map(([k, s]) => [k, tsType(s)]));
  sameFields(t, properties('types.ts', 'TrainStats'), wanted, 'TrainStats');
});

test('DistributedOptions declares every native job field (with the host and the local rank beside them)', (t) => {
  const wanted = new Map([...DISTRIBUTED_FIELDS].map(([k, f]) => [k, tsType(f)]));
  wanted.set('masterAddr', 'string').set('localRank', 'number');
  sameFields(t, properties('train/distributed.ts', 'DistributedOptions'), wanted, 'DistributedOptions');
});

test("the run table holds the precision, whose choices are the Precision type's", (t) => {
  t.deepEqual([...RUN_FIELDS.keys()], ['precision']);
  t.is(typeText(declared('model/options.ts', 'Precision')), tsType(RUN_FIELDS.get('precision')!));
});

test("RilsOptions' run options (onNonFinite, onUnsupportedPrecision) are typed with their RUN_OPTIONS values; device's pattern takes its type's", (t) => {
  const options = properties('model/options.ts', 'RilsOptions');
  for (const name of ['onNonFinite', 'onUnsupportedPrecision'] as const) {
    t.deepEqual(options.get(name)?.split(' | ').sort(), RUN_OPTIONS[name].values.map((v) => `"${v}"`).sort(), name);
  }
  t.is(options.get('device'), 'Device');
  for (const device of ['cpu', 'cuda', 'cuda:0', 'cuda:12']) t.regex(device, RUN_OPTIONS.device.pattern);
  for (const device of ['gpu', 'cuda:', 'cuda:x', 'CPU']) t.notRegex(device, RUN_OPTIONS.device.pattern);
});

test('PresetName lists the native presets', (t) => {
  const union = declared('model/options.ts', 'PresetName') as ts.UnionType;
  const names = union.types.map((u) => (u as ts.StringLiteralType).value).sort();
  t.deepEqual(names, Object.keys(PRESETS).sort());
});

test('every field is an option, checked against its declared range', (t) => {
  for (const [key, f] of [...CONFIG_FIELDS, ...TRAIN_FIELDS]) {
    t.true(isOptionName(key) || Object.values(OPTION_ALIASES).flat().includes(f.name), key);
    t.notThrows(() => checkField(f, f.default, key), `${key}: its default is allowed`);
  }
  const lr = TRAIN_FIELDS.get('lr')!,
    maskRatio = TRAIN_FIELDS.get('maskRatio')!;
  t.is(expected(TRAIN_FIELDS.get('weightDecay')!), 'a number >= 0');
  t.is(expected(lr), 'a number in [0, 1]');
  t.is(expected(maskRatio), 'a number in [0, 1)');
  t.throws(() => checkField(maskRatio, 1, 'maskRatio'), {
    message: 'Expected a number in [0, 1) for maskRatio but received number 1',
  });
  t.throws(() => checkField(CONFIG_FIELDS.get('visionDepth')!, 2.5, 'visionDepth'), {
    message: /Expected an integer >= 1/,
  });
  t.throws(() => checkField(TRAIN_FIELDS.get('retrievalGate')!, 1, 'retrievalGate'), { message: /Expected a boolean/ });
});
