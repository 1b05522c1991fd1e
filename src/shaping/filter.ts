// Which shipped lines a backend drops: by stream, and by RE2 pattern on the whole line or
// multiline event (after reassembly, so a pattern sees what the receiver would). The local
// copy keeps every line; a line filtered out is counted (`filtered`), never sent.
import type { Source } from '../codec/log-entry.ts';
import type { GoRegexp } from './go-regexp.ts';

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

/**
 * The log-opts of filtering, as data: key, value, default, one line of doc (the README's
 * table and the options schema take them from here).
 */
export const FILTER_OPTIONS = [
  { key: 'ship-streams', type: 'list', values: ['stdout', 'stderr'], default: 'stdout,stderr', doc: 'The streams whose lines ship; the local copy keeps both.' },
  { key: 'drop-pattern', type: 'regexp', default: '', doc: 'Lines (or multiline events) matching this RE2 pattern anywhere are not shipped, counted as filtered.' },
  { key: 'keep-pattern', type: 'regexp', default: '', doc: 'Set: only lines matching this RE2 pattern ship (after drop-pattern); the others are counted as filtered.' },
  { key: 'filter-backends', type: 'list', default: '', doc: 'The backends the three filter options apply to (comma-separated); empty: every selected backend.' },
] as const;

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
