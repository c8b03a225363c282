/**
 * A command's options declared once, as data: what node:util's parseArgs takes, and what `--help`
 * prints (each option with its value, its help and its default). Parsing is strict (an unknown
 * option is an error) and every option that takes a value must have one.
 * @internal
 * @module
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

import { RilsInputError } from '../errors.js';

/** One option of a command. */
export interface OptionSpec {
  /** `'string'` takes a value; `'boolean'` is a flag. */
  type: 'string' | 'boolean';
  /** Given several times (`--x a --x b`); see {@link OptionSpec.takes}. */
  multiple?: boolean;
  default?: string | boolean | string[];
  /** The value's placeholder in `--help`: `FILE`, `N`, `a,b,c`. */
  value?: string;
  /**
   * A `'string'` option that is also a flag: `--name` alone is `--name true`, `--no-name` is
   * `--name false` (`value` is then `true|false`).
   */
  flag?: boolean;
  /** For a `multiple` option, the arguments after its first value that are more of its values. */
  takes?: (arg: string) => boolean;
  /** What it is, for `--help`; the default is added. */
  help: string;
}

/** The options of a command, by name (without the dashes). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** One `rils` command. */
export interface Command<O extends OptionSpecs = OptionSpecs> {
  name: string;
  /** What it does, one line. */
  summary: string;
  /** What follows `rils NAME` in the synopsis: its required options and positional arguments. */
  synopsis: string;
  options: O;
  /** Paragraphs printed after the options. */
  notes?: string;
  /** Runs it with the arguments after the command's name. */
  run(argv: string[]): Promise<void>;
}

type Parsed<O extends OptionSpecs, P extends boolean> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: P; strict: true }>
>;

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/** The arguments before a `--` terminator. */
function optionPart(argv: string[]): string[] {
  const end = argv.indexOf('--');
  return end < 0 ? argv : argv.slice(0, end);
}

/**
 * The arguments as parseArgs reads them: `--steps -1` is the value -1 (as `--steps=-1`), an option
 * last or followed by another option is missing its value, a flag option alone is `true`, and the
 * arguments a `takes` option accepts after its value are more of its values.
 */
function normalise(argv: string[], options: OptionSpecs): string[] {
  const out: string[] = [];
  const end = optionPart(argv).length;
  for (let i = 0; i < end; i++) {
    const arg = argv[i]!;
    const negated = /^--no-(.+)$/.exec(arg)?.[1];
    if (negated !== undefined && options[negated]?.flag) {
      out.push(`--${negated}=false`);
      continue;
    }
    const name = /^--([^=]+)$/.exec(arg)?.[1];
    const spec = name === undefined ? undefined : options[name];
    if (spec?.type !== 'string') {
      out.push(arg);
      continue;
    }
    const value = i + 1 < end ? argv[i + 1] : undefined;
    if (spec.flag && (value === undefined || !/^(true|false)$/.test(value))) out.push(`--${name}=true`);
    else if (value === undefined) throw new RilsInputError(`Expected a value for --${name} but received none`);
    else if (value.startsWith('-') && !NEGATIVE_NUMBER.test(value)) {
      throw new RilsInputError(`Expected a value for --${name} but received the option ${JSON.stringify(value)}`);
    } else {
      out.push(`--${name}=${value}`);
      i++;
      while (spec.takes && i + 1 < end && spec.takes(argv[i + 1]!)) out.push(`--${name}=${argv[++i]!}`);
    }
  }
  return [...out, ...argv.slice(end)];
}

/** `--help`: the synopsis, what the command does, and every option with its default. */
export function helpText(command: Command): string {
  const rows = Object.entries(command.options).map(([name, o]) => {
    const shown =
      o.default === undefined || o.default === false || (Array.isArray(o.default) && o.default.length === 0)
        ? ''
        : ` (default ${Array.isArray(o.default) ? o.default.join(' ') : String(o.default)})`;
    return [`--${name}${o.value ? ` ${o.value}` : ''}`, `${o.help}${shown}`] as const;
  });
  rows.push(['--help, -h', 'this text']);
  const width = Math.min(28, Math.max(...rows.map(([left]) => left.length)) + 2);
  const lines = rows.map(([left, right]) =>
    left.length + 2 > width ? `  ${left}\n  ${' '.repeat(width)}${right}` : `  ${left.padEnd(width)}${right}`,
  );
  return [
    `Usage: rils ${command.name} ${command.synopsis}`,
    '',
    command.summary,
    '',
    'Options:',
    ...lines,
    ...(command.notes ? ['', command.notes] : []),
  ].join('\n');
}

/**
 * The command's options and positionals, parsed strictly (an unknown option is an error). With
 * `--help` or `-h` anywhere before `--`, prints {@link helpText} and exits 0.
 */
export function parseCommand<O extends OptionSpecs, P extends boolean = false>(
  argv: string[],
  command: Command<O>,
  allowPositionals?: P,
): Parsed<O, P> {
  if (optionPart(argv).some((arg) => arg === '--help' || arg === '-h')) {
    console.log(helpText(command));
    process.exit(0);
  }
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, o]) => [
      name,
      {
        type: o.type,
        ...(o.multiple ? { multiple: true } : {}),
        ...(o.default === undefined ? {} : { default: o.default }),
      },
    ]),
  ) as NonNullable<ParseArgsConfig['options']>;
  const args = normalise(argv, command.options);
  return parseArgs({ args, options, allowPositionals: allowPositionals ?? false, strict: true }) as Parsed<O, P>;
}
