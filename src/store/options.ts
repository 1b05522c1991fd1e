// What the store is configured with, per container (json-file's max-size, max-file, compress),
// declared as data (options/schema.ts parses them; the README's table comes from here).
import { defineOptions, parseOptions } from '../options/schema.ts';
import { InvalidOptionError, parseCount } from '../options/values.ts';

export interface StoreOptions {
  /** Rotate the current file once it would grow past this many bytes. */
  maxSizeBytes: number;
  /** Files kept in all, the current one included. */
  maxFiles: number;
  /** Gzip rotated files. */
  compress: boolean;
}

// An empty value is an error, not unset: json-file parses it as given. The defaults are the
// local driver's, with json-file's 20m (decimal units).
export const STORE_OPTIONS = defineOptions([
  { key: 'max-size', type: 'size', units: 'decimal', default: '20m', empty: 'value', doc: 'size at which the current file is rotated: `500k`, `20m`, `1g` (decimal units, as `json-file`: `10m` = 10,000,000 bytes)' },
  { key: 'max-file', type: 'custom', accepts: 'a whole number of files, 1 or more', parse: (value: string, key: string) => parseCount(key, value), default: '5', empty: 'value', doc: 'files kept in all, the current one included; with `1` the file is started again at `max-size`' },
  { key: 'compress', type: 'bool', default: 'true', empty: 'value', doc: "gzip rotated files (`true`/`false`, also `1`, `t`, `0`, `f`, … like Go's `ParseBool`); `true` with `max-file=1` is an error" },
]);

export function parseStoreOptions(opts: Readonly<Record<string, string | undefined>>): StoreOptions {
  const values = parseOptions(STORE_OPTIONS, opts);
  const store = { maxSizeBytes: values['max-size'], maxFiles: values['max-file'], compress: values.compress };
  // Only a compress given: the default (true) with max-file=1 is fine.
  if (store.maxFiles === 1 && opts.compress !== undefined && store.compress) {
    throw new InvalidOptionError(`log opt 'compress' cannot be true when 'max-file' is 1: there are no rotated files to compress`);
  }
  return store;
}

export const DEFAULT_STORE_OPTIONS: StoreOptions = parseStoreOptions({});
