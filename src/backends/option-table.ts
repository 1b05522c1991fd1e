// A backend's log-opts as data (key, type, default, bounds, values, secret, required, doc):
// read once into typed values, with errors that name the option and what it accepts and
// never quote a secret. gelf and splunk declare theirs this way; it is the shape of the
// options schema of issue 12 (options/schema.ts), so moving to it is a change of import.
import { InvalidOptionError, parseBool } from '../lifecycle/options.ts';

export type OptionRow =
  | { key: string; type: 'string'; default?: string; required?: boolean; secret?: boolean; doc: string }
  | { key: string; type: 'bool'; default: boolean; doc: string }
  | { key: string; type: 'int'; default: number; min: number; max: number; doc: string }
  | { key: string; type: 'enum'; default: string; values: readonly string[]; doc: string };

type ValueOf<R> = R extends { type: 'bool' } ? boolean
  : R extends { type: 'int' } ? number
  : R extends { type: 'enum' } ? string
  : R extends { default: string } | { required: true } ? string
  : string | undefined;

export type OptionValues<T extends readonly OptionRow[]> = { [R in T[number] as R['key']]: ValueOf<R> };

/** The value as an error may show it. */
export function shown(row: OptionRow, value: string): string {
  return row.type === 'string' && row.secret ? '(not shown: a secret)' : `'${value}'`;
}

/**
 * Reads every row's option from `opts`: absent is the default (a required one is an error),
 * and `given` says which were set. Integers are Go's strconv.Atoi (an optional sign).
 */
export function readOptions<T extends readonly OptionRow[]>(
  table: T,
  opts: Readonly<Record<string, string>>,
): { values: OptionValues<T>; given: Set<string> } {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const row of table) {
    const value = opts[row.key];
    if (value === undefined) {
      if (row.type === 'string' && row.required) throw new InvalidOptionError(`log opt '${row.key}' is required: ${row.doc}`);
      values[row.key] = row.default;
      continue;
    }
    given.add(row.key);
    switch (row.type) {
      case 'string':
        if (row.required && value === '') throw new InvalidOptionError(`log opt '${row.key}' must not be empty: ${row.doc}`);
        values[row.key] = value;
        break;
      case 'bool':
        values[row.key] = parseBool(row.key, value);
        break;
      case 'int': {
        const n = /^[+-]?\d{1,16}$/.test(value) ? Number(value) : NaN;
        if (!(n >= row.min && n <= row.max)) {
          throw new InvalidOptionError(`invalid value ${shown(row, value)} for log opt '${row.key}': expected a whole number from ${row.min} to ${row.max}`);
        }
        values[row.key] = n;
        break;
      }
      case 'enum':
        if (!row.values.includes(value)) {
          throw new InvalidOptionError(`invalid value ${shown(row, value)} for log opt '${row.key}': expected ${row.values.join(', ')}`);
        }
        values[row.key] = value;
        break;
    }
  }
  return { values: values as OptionValues<T>, given };
}

/** The README's options table of a backend, from its rows. */
export function optionsMarkdown(table: readonly OptionRow[]): string {
  const rows = table.map((row) => {
    const dflt =
      row.type === 'string' ? (row.required ? 'required' : row.default ? `\`${row.default}\`` : 'none')
      : `\`${String(row.default)}\``;
    const accepts =
      row.type === 'bool' ? '`true`/`false`'
      : row.type === 'int' ? `${row.min} to ${row.max}`
      : row.type === 'enum' ? row.values.map((v) => `\`${v}\``).join(', ')
      : row.type === 'string' && row.secret ? 'a secret (never logged)'
      : 'text';
    return `| \`${row.key}\` | ${dflt} | ${accepts} | ${row.doc} |`;
  });
  return ['| option | default | accepts | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
