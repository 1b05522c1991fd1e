// What the shaping stage is configured with, per container: the tag, the extra attributes,
// and how lines are joined and parsed (LineShaping); its log-opts declared as data
// (options/schema.ts parses them; the README's tables come from here).
import { defineOptions, parseOptions, schemaKeys } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import type { AttributeSpec } from './attributes.ts';
import { parseFilter } from './filter.ts';
import { parseGoRegexpOption } from './go-regexp.ts';
import type { LineShaping } from './line-shaper.ts';
import { type MultilineMatcher, type MultilineOptions, datetimeFormatPattern } from './multiline.ts';
import { MULTILINE_PRESETS, type MultilinePreset } from './multiline-presets.ts';
import { type RedactionSpec, parseRedaction } from './redact.ts';
import { type TagTemplate, TemplateError, compileTag } from './tag.ts';

export interface ShapingOptions extends LineShaping {
  /** Null: nothing masked. Env values are bound per container (redactorFor). */
  redaction: RedactionSpec | null;
  /** `{{.ID}}` unless `tag` is set. */
  tag: TagTemplate;
  /** `tag` was given (not empty, which Docker treats as unset). */
  tagSet: boolean;
  /** `tag` was given as the empty string (not absent). */
  tagEmpty: boolean;
  attributes: AttributeSpec;
}

export const DEFAULT_TAG = '{{.ID}}';

/** The options every backend shares, with the built-in drivers' meaning (an empty one is unset, as Docker treats it). */
export const ATTRIBUTE_OPTIONS = defineOptions([
  { key: 'tag', type: 'custom', accepts: 'a Go template', parse: parseTag, default: DEFAULT_TAG, doc: 'a Go template: `{{.ID}}` (12 characters), `{{.FullID}}`, `{{.Name}}`, `{{.ImageID}}` (12 hex digits, as Docker 29.5 and later give it; see below), `{{.ImageFullID}}`, `{{.ImageName}}`, `{{.Command}}`, `{{.Hostname}}`, `{{.DaemonName}}`, raw fields such as `{{.ContainerLabels.k}}` or `{{index .ContainerLabels "k"}}`, pipelines and the functions `lower upper title split join pad truncate json len index`. A template logship cannot evaluate (`if`, `range`, `printf`, parentheses, an unknown field) fails `docker run` instead of giving a wrong tag.' },
  { key: 'labels', type: 'custom', accepts: 'a comma-separated list', parse: list, doc: 'comma-separated label keys added to each line as attributes' },
  { key: 'labels-regex', type: 'custom', accepts: 'a Go regular expression', parse: parseGoRegexpOption, doc: 'labels whose key matches are added' },
  { key: 'env', type: 'custom', accepts: 'a comma-separated list', parse: list, doc: 'comma-separated env var names added' },
  { key: 'env-regex', type: 'custom', accepts: 'a Go regular expression', parse: parseGoRegexpOption, doc: 'env vars whose name matches are added' },
]);

/** An event is held in memory until it closes: no bigger than the longest line reassembled (1 MiB). */
const MAX_MULTILINE_MAX_BYTES = 1024 * 1024;
/** Every line takes one byte at least, its '\n': more lines than bytes is no limit. */
const MAX_MULTILINE_MAX_LINES = MAX_MULTILINE_MAX_BYTES;

// The flush timeout's 1s is long enough for a trace printed in several writes, short enough
// that a last line is not held for long. 1000 lines: a deep Java trace with its causes runs to
// a few hundred. 128 KiB holds such a trace and stays under every receiver's per-record limit
// (CloudWatch 256 KiB, Cloud Logging 256 KB) with room for the record's metadata and for JSON
// escaping, which writes each '\n' and '\t' of a trace as two bytes.
export const MULTILINE_OPTIONS = defineOptions([
  { key: 'multiline-pattern', type: 'custom', accepts: 'a Go regular expression', parse: firstLinePattern, doc: "a Go regexp (unanchored, as `awslogs-multiline-pattern`): a line that matches starts an event, any other line continues the open one. Lines before a stream's first match ship alone" },
  { key: 'datetime-format', type: 'custom', accepts: 'a strftime format', parse: datetimeFormat, doc: 'a strftime format (as `awslogs-datetime-format`: `%Y-%m-%d %H:%M:%S`, with `%a %A %w %d %b %B %m %Y %y %H %I %p %M %S %f %z %Z %j %L`): a line containing such a date starts an event. The rest of the format is regexp text, as in Docker (start it with `^` to anchor it); an unknown directive is an error here, where Docker drops it silently' },
  { key: 'multiline-preset', type: 'custom', accepts: MULTILINE_PRESETS.join(', '), parse: preset, doc: "`java`, `python` or `go`: built-in rules for those runtimes' traces (below); every other line ships on its own" },
  { key: 'multiline-flush-timeout', type: 'duration', timer: true, min: 1, default: '1s', doc: 'an open event with no new line for this long (a Go duration from `1ms` to `24h`, rounded up to whole milliseconds: `1500us` is 2 ms) ships as it is; a stopped container\'s open events ship at once' },
  { key: 'multiline-max-lines', type: 'int', min: 1, max: MAX_MULTILINE_MAX_LINES, unit: 'of lines', default: '1000', doc: 'an event is closed at this many lines (1 to 1048576) and the next line starts another (a deep Java trace with its causes is a few hundred lines)' },
  { key: 'multiline-max-bytes', type: 'size', units: 'binary', max: MAX_MULTILINE_MAX_BYTES, default: '128k', doc: 'nor grows past this many bytes (at most `1m`, the longest line logship reassembles), the joining `\\n`s counted (binary units). 128 KiB holds such a trace and stays within every receiver\'s per-record limit (CloudWatch 256 KiB, Cloud Logging 256 KB) with room for the record\'s metadata and for JSON escaping, which doubles each `\\n` and `\\t` of a trace. A single line longer than this is still one event, whole' },
]);

export const JSON_OPTIONS = defineOptions([
  { key: 'parse-json', type: 'bool', default: 'false', doc: 'ship a line that is a JSON object with its keys as structured fields; see [JSON logs](#json-logs)' },
]);

/** The keys parseShapingOptions reads besides the controls' (filter, redact), in the order errors list them. */
export const SHAPING_KEYS: readonly string[] = [ATTRIBUTE_OPTIONS, MULTILINE_OPTIONS, JSON_OPTIONS].flatMap(schemaKeys);

/** The shaping options (the backends filter-backends names are the caller's to check). */
export function parseShapingOptions(opts: Readonly<Record<string, string>>): ShapingOptions {
  const attributes = parseOptions(ATTRIBUTE_OPTIONS, opts);
  return {
    tag: attributes.tag,
    tagSet: Boolean(opts.tag),
    tagEmpty: opts.tag === '',
    attributes: {
      labels: attributes.labels ?? [],
      labelsRegex: attributes['labels-regex'] ?? null,
      env: attributes.env ?? [],
      envRegex: attributes['env-regex'] ?? null,
    },
    filter: parseFilter(opts),
    multiline: parseMultilineOptions(opts),
    parseJson: parseOptions(JSON_OPTIONS, opts)['parse-json'],
    redaction: parseRedaction(opts),
  };
}

function parseMultilineOptions(opts: Readonly<Record<string, string>>): MultilineOptions | null {
  // The ways to find a first line exclude each other, and the caps need one of them: said
  // before any value is parsed. Empty values count as unset, as Docker treats awslogs-multiline-pattern.
  const set = schemaKeys(MULTILINE_OPTIONS).filter((key) => opts[key]);
  const matchers = set.filter((key) => key === 'multiline-pattern' || key === 'datetime-format' || key === 'multiline-preset');
  if (matchers.length > 1) {
    throw new InvalidOptionError(`log opts '${matchers[0]}' and '${matchers[1]}' cannot both be set: choose one way to find the first line of an event`);
  }
  if (matchers.length === 0) {
    if (set.length === 0) return null;
    throw new InvalidOptionError(
      `log opt '${set[0]}' needs one of 'multiline-pattern', 'datetime-format' or 'multiline-preset' (it only tunes how lines are joined into events)`,
    );
  }
  const values = parseOptions(MULTILINE_OPTIONS, opts);
  return {
    matcher: (values['multiline-pattern'] ?? values['datetime-format'] ?? values['multiline-preset'])!,
    flushTimeoutMs: values['multiline-flush-timeout'],
    maxLines: values['multiline-max-lines'],
    maxBytes: values['multiline-max-bytes'],
  };
}

function parseTag(value: string, key: string): TagTemplate {
  try {
    return compileTag(value);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': ${err.message}`);
  }
}

// As moby splits it: on ',' only, with no trimming.
function list(value: string): string[] {
  return value.split(',');
}

function firstLinePattern(value: string, key: string): MultilineMatcher {
  return { kind: 'first-line', pattern: parseGoRegexpOption(value, key) };
}

function datetimeFormat(value: string, key: string): MultilineMatcher {
  try {
    return { kind: 'first-line', pattern: datetimeFormatPattern(value) };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': ${err.message}; expected a strftime format such as %Y-%m-%d %H:%M:%S`);
  }
}

function preset(value: string, key: string): MultilineMatcher {
  if (!(MULTILINE_PRESETS as readonly string[]).includes(value)) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected ${MULTILINE_PRESETS.join(', ')}`);
  }
  return { kind: 'preset', preset: value as MultilinePreset };
}
