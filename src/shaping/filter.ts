// Which shipped lines a backend drops: by stream, and by RE2 pattern on the whole line or
// multiline event (after reassembly, so a pattern sees what the receiver would). The local
// copy keeps every line; a line filtered out is counted (`filtered`), never sent.
import type { Source } from '../codec/log-entry.ts';
import { type OptionValues, defineOptions, parseOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import { type GoRegexp, parseGoRegexpOption } from './go-regexp.ts';

export interface LineFilter {
  /** Streams that ship; null: both. */
  streams: ReadonlySet<Source> | null;
  /** A line that matches is dropped. */
  drop: GoRegexp | null;
  /** Set: only a line that matches ships (drop is applied first). */
  keep: GoRegexp | null;
  /** Backends it applies to; null: every selected backend. */
  backends: ReadonlySet<string> | null;
}

/** The log-opts of filtering (options/schema.ts parses them; the README's table comes from here). */
export const FILTER_OPTIONS = defineOptions([
  { key: 'ship-streams', type: 'custom', accepts: 'stdout, stderr or stdout,stderr', default: 'stdout,stderr', doc: 'The streams whose lines ship; the local copy keeps both.', parse: parseStreams },
  { key: 'drop-pattern', type: 'custom', accepts: 'an RE2 regular expression', doc: 'Lines (or multiline events) matching this RE2 pattern anywhere are not shipped, counted as filtered.', parse: parseGoRegexpOption },
  { key: 'keep-pattern', type: 'custom', accepts: 'an RE2 regular expression', doc: 'Set: only lines matching this RE2 pattern ship (after drop-pattern); the others are counted as filtered.', parse: parseGoRegexpOption },
  { key: 'filter-backends', type: 'custom', accepts: 'a comma-separated list of selected backends', defaultDoc: 'every selected backend', doc: 'The backends the three filter options apply to.', parse: nameSet },
]);

/** The filter the log-opts ask for, or null when they ship everything. */
export function filterOf(values: OptionValues<typeof FILTER_OPTIONS>): LineFilter | null {
  const streams = values['ship-streams'];
  const drop = values['drop-pattern'] ?? null;
  const keep = values['keep-pattern'] ?? null;
  const backends = values['filter-backends'] ?? null;
  if (streams === null && drop === null && keep === null) {
    if (backends !== null) throw new InvalidOptionError(`log opt 'filter-backends' needs one of 'ship-streams', 'drop-pattern' or 'keep-pattern' (it only says which backends they apply to)`);
    return null;
  }
  return { streams, drop, keep, backends };
}

export function parseFilter(opts: Readonly<Record<string, string>>): LineFilter | null {
  return filterOf(parseOptions(FILTER_OPTIONS, opts));
}

/** Null: both streams, which is no filter. */
function parseStreams(value: string, key: string): ReadonlySet<Source> | null {
  const streams = new Set<Source>();
  for (const name of value.split(',').map((n) => n.trim())) {
    if (name !== 'stdout' && name !== 'stderr') throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected stdout, stderr or stdout,stderr`);
    streams.add(name);
  }
  return streams.size === 2 ? null : streams;
}

/** A comma-separated list of names (backends: lifecycle checks they are selected). */
export function nameSet(value: string): ReadonlySet<string> {
  return new Set(value.split(',').map((n) => n.trim()));
}

/** Whether the line ships. Patterns read the line's bytes as UTF-8 (as Go's regexp reads a []byte). */
export function passes(filter: LineFilter, source: Source, line: Buffer): boolean {
  if (filter.streams !== null && !filter.streams.has(source)) return false;
  if (filter.drop !== null && filter.drop.test(line)) return false;
  return filter.keep === null || filter.keep.test(line);
}

/** The filter for one backend, or null when it ships everything. */
export function filterFor(filter: LineFilter | null, backend: string): LineFilter | null {
  if (filter === null || (filter.backends !== null && !filter.backends.has(backend))) return null;
  return filter;
}
