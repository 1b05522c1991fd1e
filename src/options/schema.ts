// Options as data. A stage or backend declares each of its options once, as an OptionSpec:
// its key, type, default, bounds or values, whether it is required or a secret, and one
// line of doc. From that one declaration come the parsing (each value once, at
// StartLogging, into a typed record), the error messages (naming the option and what it
// accepts; a secret's value is never quoted, not even from a custom parser's message), and
// the README's option tables (scripts/docs-options.ts), which a unit test keeps in step.
import { InvalidOptionError, parseBool, parseGoDuration, parseRamInBytes, parseSize, parseTimerDuration } from './values.ts';

interface SpecBase<K extends string = string> {
  readonly key: K;
  /** One line for the README: what the option does. */
  readonly doc: string;
  /**
   * The default as a user would write it, parsed like a given value (so the README shows
   * it as it is typed); absent: the value is undefined unless given.
   */
  readonly default?: string;
  /** The README's default column when the default is not a literal (`the container's id`). */
  readonly defaultDoc?: string;
  /** Absent or empty fails with `must specify a value for log opt 'K'`. */
  readonly required?: boolean;
  /** Never quoted in a message, never logged. */
  readonly secret?: boolean;
  /**
   * How an empty value counts: 'unset' (the default; Docker treats most empty log-opts so),
   * or 'value' (passed to the parser: a presence flag, or a value that must not be empty).
   */
  readonly empty?: 'unset' | 'value';
}

export type OptionSpec<K extends string = string> =
  | (SpecBase<K> & { readonly type: 'string'; readonly accepts?: string; readonly parse?: never })
  | (SpecBase<K> & { readonly type: 'bool'; readonly parse?: never })
  | (SpecBase<K> & { readonly type: 'int'; readonly min: number; readonly max: number; readonly unit?: string; readonly parse?: never })
  /** A Go duration (`500ms`, `1m30s`), in milliseconds; with `timer`, whole and at most a day. */
  | (SpecBase<K> & { readonly type: 'duration'; readonly min?: number; readonly timer?: boolean; readonly parse?: never })
  /** go-units sizes in bytes: `decimal` as json-file's max-size, `binary` (RAMInBytes) up to `max`. */
  | (SpecBase<K> & { readonly type: 'size'; readonly units: 'decimal' | 'binary'; readonly max?: number; readonly parse?: never })
  | (SpecBase<K> & { readonly type: 'enum'; readonly values: readonly string[]; readonly parse?: never })
  /** Anything else: `parse` throws InvalidOptionError naming the option; `accepts` is the README's. */
  | (SpecBase<K> & { readonly type: 'custom'; readonly accepts: string; readonly parse: (value: string, key: string) => unknown });

export type OptionSchema = readonly OptionSpec[];

type ValueOf<O> = O extends { type: 'custom'; parse: (value: string, key: string) => infer R }
  ? R
  : O extends { type: 'bool' }
    ? boolean
    : O extends { type: 'int' | 'duration' | 'size' }
      ? number
      : O extends { type: 'enum'; values: readonly (infer V)[] }
        ? V
        : string;
type Maybe<O> = O extends { default: string } ? never : O extends { required: true } ? never : undefined;

/** The typed values of a schema, by key: undefined for an option without default that was not given. */
export type OptionValues<S extends OptionSchema> = { readonly [O in S[number] as O['key']]: ValueOf<O> | Maybe<O> };

/** Declares a schema, keeping its keys and types for OptionValues. */
export function defineOptions<const S extends OptionSchema>(schema: S): S {
  return schema;
}

export function schemaKeys(schema: OptionSchema): string[] {
  return schema.map((spec) => spec.key);
}

/**
 * The schema's options from `opts` (keys outside it are ignored: the caller says which
 * keys are whose). Each value is parsed once, with the default for one not given.
 */
export function parseOptions<S extends OptionSchema>(schema: S, opts: Readonly<Record<string, string | undefined>>): OptionValues<S> {
  const out: Record<string, unknown> = {};
  for (const spec of schema) {
    const given = opts[spec.key];
    const set = given !== undefined && (given !== '' || spec.empty === 'value');
    if (!set && spec.required) throw new InvalidOptionError(`must specify a value for log opt '${spec.key}'`);
    const value = set ? given : spec.default;
    out[spec.key] = value === undefined ? undefined : parseValue(spec, value);
  }
  return out as OptionValues<S>;
}

function parseValue(spec: OptionSpec, value: string): unknown {
  try {
    return parseOne(spec, value);
  } catch (err) {
    if (!(err instanceof InvalidOptionError) || !spec.secret || value === '' || !err.message.includes(value)) throw err;
    throw new InvalidOptionError(err.message.replaceAll(`'${value}'`, '(not shown: a secret)').replaceAll(value, '(not shown: a secret)'));
  }
}

function parseOne(spec: OptionSpec, value: string): unknown {
  const key = spec.key;
  const shown = spec.secret ? '' : ` '${value}'`;
  switch (spec.type) {
    case 'string':
      return value;
    case 'bool':
      return parseBool(key, value);
    case 'int': {
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
        throw new InvalidOptionError(`invalid value${shown} for log opt '${key}': expected ${intAccepts(spec)}`);
      }
      return n;
    }
    case 'duration':
      return spec.timer ? parseTimerDuration(key, value, spec.min ?? 0) : parseGoDuration(key, value);
    case 'size':
      return spec.units === 'decimal' ? parseSize(key, value) : parseRamInBytes(key, value, spec.max);
    case 'enum':
      if (spec.values.includes(value)) return value;
      throw new InvalidOptionError(`invalid value${shown} for log opt '${key}': expected ${orList(spec.values)}`);
    case 'custom':
      return spec.parse(value, key);
  }
}

function intAccepts(spec: { min: number; max: number; unit?: string }): string {
  const unit = spec.unit ? ` ${spec.unit}` : '';
  return spec.max === Number.MAX_SAFE_INTEGER ? `a whole number${unit} of ${spec.min} or more` : `a whole number${unit} from ${spec.min} to ${spec.max}`;
}

function orList(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? 'nothing') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

/** What the option accepts, as the README's table says it. */
export function accepts(spec: OptionSpec): string {
  switch (spec.type) {
    case 'string':
      return spec.accepts ?? 'text';
    case 'bool':
      return '`true` or `false`';
    case 'int':
      return intAccepts(spec);
    case 'duration':
      return spec.timer ? `a duration from ${spec.min ? `${spec.min}ms` : '0'} to 24h (\`500ms\`, \`1m30s\`)` : 'a duration (`500ms`, `1m30s`)';
    case 'size':
      return spec.units === 'decimal' ? 'a size, decimal units (`500k`, `20m`, `1g`)' : `a size, binary units (\`512k\`, \`8m\`)${spec.max ? ' up to ' + humanBinary(spec.max) : ''}`;
    case 'enum':
      return orList(spec.values.map((v) => (v === '' ? '(empty)' : `\`${v}\``)));
    case 'custom':
      return spec.accepts;
  }
}

function humanBinary(n: number): string {
  for (const [unit, size] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) if (n % size === 0) return `${n / size}${unit}`;
  return String(n);
}

/**
 * The README table of a schema (Markdown; `|` in a cell escaped): the option (headed `what`),
 * its default (`defaultDoc`, else the literal default), and its doc.
 */
export function optionTable(schema: OptionSchema, what = 'option'): string {
  const cell = (text: string): string => text.replaceAll('|', '\\|');
  const rows = schema.map((spec) => {
    const def = spec.defaultDoc ?? (spec.default === undefined ? (spec.required ? 'required' : 'none') : spec.default === '' ? 'empty' : `\`${spec.default}\``);
    const doc = spec.secret ? `${spec.doc} (a secret: never logged, never quoted in an error)` : spec.doc;
    return `| \`${spec.key}\` | ${cell(def)} | ${cell(doc)} |`;
  });
  return [`| ${what} | default | meaning |`, '|---|---|---|', ...rows].join('\n');
}

/** The README between `<!-- options:NAME -->` and `<!-- /options:NAME -->`, or null without markers. */
export function markedSection(readme: string, name: string): { start: number; end: number } | null {
  const open = `<!-- options:${name} -->\n`;
  const start = readme.indexOf(open);
  const end = readme.indexOf(`<!-- /options:${name} -->`, start);
  return start < 0 || end < 0 ? null : { start: start + open.length, end };
}

/** Keys that more than one of the named schemas declares (none may). */
export function overlappingKeys(schemas: ReadonlyArray<{ name: string; schema: OptionSchema }>): string[] {
  const owner = new Map<string, string>();
  const clashes: string[] = [];
  for (const { name, schema } of schemas) {
    for (const key of schemaKeys(schema)) {
      const first = owner.get(key);
      if (first !== undefined && first !== name) clashes.push(`${key} (${first}, ${name})`);
      else owner.set(key, name);
    }
  }
  return clashes;
}
