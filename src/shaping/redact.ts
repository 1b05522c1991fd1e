// Masking secrets in lines before they leave the host: presets for common secrets, the
// operator's own RE2 pattern, and the values of environment variables the container was
// started with (the plugin is the one place that knows them, from StartLogging). Applied by
// the line shaper after reassembly (a secret split over 16 KiB chunks is whole again) to every
// backend; the local copy stays byte-identical to json-file unless redact-local asks otherwise.
//
// Patterns run on the line's bytes (re2js reads them as UTF-8, as Go's regexp reads a []byte),
// so what is not masked goes out byte for byte, valid UTF-8 or not. A pattern with capture
// groups masks what its groups captured (the `Bearer ` before a token stays readable); one
// without masks its whole match.
import { defineOptions, parseOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import { type GoRegexp, compileGoRegexp, parseGoRegexpOption } from './go-regexp.ts';

/** What replaces each secret. */
export const MASK = Buffer.from('***');

/**
 * A value shorter than this is refused for redact-env: a short value (`1`, `true`, `prod`,
 * a port) occurs inside ordinary words and numbers everywhere, so masking it would mangle
 * unrelated text in every line while hiding little (a secret that short is guessed anyway).
 */
export const MIN_ENV_VALUE_CHARS = 6;

export const REDACT_PRESETS = {
  'aws-access-key': {
    pattern: String.raw`\b((?:AKIA|ASIA)[A-Z0-9]{16})\b|(?i:aws_?secret_?access_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})`,
    doc: 'AWS access key ids (AKIA… long-term, ASIA… temporary: 20 characters) and a 40-character secret access key after aws_secret_access_key= or :',
  },
  bearer: {
    pattern: String.raw`(?i)\bbearer\s+([A-Za-z0-9._~+/-]+=*)`,
    doc: 'The token after "Bearer " (any case), as in an Authorization header; the word Bearer stays',
  },
  jwt: {
    pattern: String.raw`\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`,
    doc: 'JSON Web Tokens: three base64url parts whose first two are JSON objects (eyJ…), signature possibly empty',
  },
  'pem-private-key': {
    pattern: String.raw`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----((?s:.*?))(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`,
    doc: 'The body of a PEM private key (RSA, EC, OPENSSH, ENCRYPTED...) up to its END line or the end of the line: a block printed over several lines is masked whole only when multiline log-opts join it into one event',
  },
  'url-password': {
    pattern: String.raw`\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:([^/?#@\s]+)@`,
    doc: 'The password in a URL\'s user information (scheme://user:password@host); the user stays',
  },
} as const satisfies Record<string, { pattern: string; doc: string }>;

export type RedactPreset = keyof typeof REDACT_PRESETS;
export const REDACT_PRESET_NAMES = Object.keys(REDACT_PRESETS) as RedactPreset[];

/** The log-opts of redaction (options/schema.ts parses them; the README's table comes from here). */
export const REDACT_OPTIONS = defineOptions([
  { key: 'redact', type: 'custom', accepts: `a comma-separated list of ${REDACT_PRESET_NAMES.join(', ')}, or all`, doc: 'Presets of secrets masked as *** in shipped lines: a comma-separated list (table below), or all.', parse: parsePresets },
  { key: 'redact-pattern', type: 'custom', accepts: 'an RE2 regular expression', doc: 'An RE2 pattern masked in shipped lines: its capture groups if it has any, else the whole match.', parse: parseGoRegexpOption },
  { key: 'redact-env', type: 'custom', accepts: 'a comma-separated list of environment variable names', doc: `Names of the container's environment variables whose values are masked wherever they appear; a value under ${MIN_ENV_VALUE_CHARS} characters is refused.`, parse: parseEnvNames },
  { key: 'redact-local', type: 'bool', default: 'false', doc: "Also mask the local copy (docker logs), 16 KiB chunk by chunk, at the store's write." },
]);

/** The redaction the log-opts ask for; null when nothing is masked. */
export function parseRedaction(opts: Readonly<Record<string, string>>): RedactionSpec | null {
  const values = parseOptions(REDACT_OPTIONS, opts);
  const patterns = [...(values.redact ?? [])];
  if (values['redact-pattern']) patterns.push(values['redact-pattern']);
  const envNames = values['redact-env'] ?? [];
  const local = values['redact-local'];
  if (patterns.length === 0 && envNames.length === 0) {
    if (local) throw new InvalidOptionError(`log opt 'redact-local' needs one of 'redact', 'redact-pattern' or 'redact-env' (it only says whether the local copy is masked too)`);
    return null;
  }
  return { patterns, envNames, local };
}

function parsePresets(value: string, key: string): GoRegexp[] {
  const names = value.split(',').map((n) => n.trim());
  const presets = names.includes('all') ? REDACT_PRESET_NAMES : names;
  return presets.map((name) => {
    if (!(REDACT_PRESET_NAMES as readonly string[]).includes(name)) {
      throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': '${name}' is not a preset (accepted: a comma-separated list of ${REDACT_PRESET_NAMES.join(', ')}, or all)`);
    }
    return presetPattern(name as RedactPreset);
  });
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseEnvNames(value: string, key: string): string[] {
  const names = value.split(',').map((n) => n.trim());
  for (const name of names) {
    if (!ENV_NAME.test(name)) {
      throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': '${name}' is not an environment variable name (letters, digits and _, not starting with a digit)`);
    }
  }
  return names;
}

/** The redaction log-opts, validated; env values are bound per container (see bindEnv). */
export interface RedactionSpec {
  patterns: readonly GoRegexp[];
  envNames: readonly string[];
  local: boolean;
}

export function presetPattern(name: RedactPreset): GoRegexp {
  return compileGoRegexp(REDACT_PRESETS[name].pattern);
}

/** Thrown when a redact-env variable's value is too short; names the variable, never the value. */
export class ShortSecretError extends Error {}

/**
 * The values of the named variables in a container's env (`NAME=value` entries); unset or
 * empty ones mask nothing (a daemon-wide redact-env fits containers without them).
 */
export function envValues(names: readonly string[], env: readonly string[]): string[] {
  const values: string[] = [];
  for (const name of names) {
    const entry = env.findLast((e) => e.startsWith(`${name}=`));
    const value = entry?.slice(name.length + 1) ?? '';
    if (value === '') continue;
    if ([...value].length < MIN_ENV_VALUE_CHARS) {
      throw new ShortSecretError(
        `the value of environment variable ${name} is shorter than ${MIN_ENV_VALUE_CHARS} characters: masking it would also mask it inside unrelated words and numbers in every line`,
      );
    }
    values.push(value);
  }
  return values;
}

export class Redactor {
  private readonly patterns: readonly GoRegexp[];
  private readonly values: readonly Buffer[];
  private readonly ranges: number[] = [];

  constructor(patterns: readonly GoRegexp[], values: readonly string[]) {
    this.patterns = patterns;
    // Longest first: a value inside another is masked as part of it.
    this.values = values.map((v) => Buffer.from(v)).sort((a, b) => b.length - a.length);
  }

  /** The line with every secret masked; the same Buffer when there was none. */
  redact(line: Buffer): Buffer {
    const ranges = this.ranges;
    ranges.length = 0;
    for (const re of this.patterns) {
      // test() runs on the DFA alone; the matcher (and its capture groups) only on a hit.
      if (!re.test(line)) continue;
      const m = re.matcher(line);
      const groups = re.groupCount();
      while (m.find()) {
        let grouped = false;
        for (let g = 1; g <= groups; g++) {
          const s = m.start(g);
          if (s >= 0 && m.end(g) > s) {
            ranges.push(s, m.end(g));
            grouped = true;
          } else if (s >= 0) grouped = true;
        }
        if (!grouped && m.end() > m.start()) ranges.push(m.start(), m.end());
      }
    }
    for (const value of this.values) {
      for (let at = line.indexOf(value); at >= 0; at = line.indexOf(value, at + value.length)) ranges.push(at, at + value.length);
    }
    return ranges.length === 0 ? line : masked(line, ranges);
  }
}

/** `line` with each [start, end) of `ranges` (flat pairs, any order, overlapping) replaced by MASK. */
function masked(line: Buffer, ranges: number[]): Buffer {
  const pairs: [number, number][] = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const parts: Buffer[] = [];
  let at = 0;
  for (const [start, end] of pairs) {
    if (end <= at) continue;
    if (start > at) parts.push(line.subarray(at, start));
    if (start >= at || parts.at(-1) !== MASK) parts.push(MASK);
    at = end;
  }
  parts.push(line.subarray(at));
  return Buffer.concat(parts);
}

/** The redactor of one container, or null when nothing is to be masked. */
export function redactorFor(spec: RedactionSpec | null, env: readonly string[]): Redactor | null {
  if (spec === null) return null;
  const values = envValues(spec.envNames, env);
  return spec.patterns.length === 0 && values.length === 0 ? null : new Redactor(spec.patterns, values);
}
