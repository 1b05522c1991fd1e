// Addresses as log-opts give them: `host[:port]`, `scheme://host[:port]`, `unix:///path`,
// and http(s) URLs. One grammar of each, and one way to say what is wrong with a value:
// the option is named, the accepted forms are listed, and a value that may carry
// `user:password@` is never quoted.
import { InvalidOptionError } from '../options/values.ts';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Splits `host[:port]` (IPv6 in brackets) as Go's net.SplitHostPort does, with the default
 * port when none is given. Returns null when it is malformed.
 */
export function parseHostPort(hostPort: string, defaultPort: number): HostPort | null {
  const match = /^(?:\[([^\]]*)\]|([^:/[\]]*))(?::(\d{1,5}))?$/.exec(hostPort);
  if (!match) return null;
  const host = match[1] ?? match[2] ?? '';
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { host, port };
}

/**
 * An address log-opt's value as an error message shows it: quoted, unless it has an @ and
 * so may hold `user:password@`.
 */
export function shownAddress(value: string): string {
  return value.includes('@') ? '(not shown: it has an @)' : `'${value}'`;
}

/** `invalid value 'V' for log opt 'K': WHY; expected EXPECTED`, the value shown only when safe. */
export function invalidAddress(key: string, value: string, why: string, expected: string): InvalidOptionError {
  return new InvalidOptionError(`invalid value ${shownAddress(value)} for log opt '${key}': ${why}; expected ${expected}`);
}

/** `scheme://rest` split, or null when the value is not in that form. */
export function splitScheme(value: string): { scheme: string; rest: string } | null {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/.exec(value);
  return match ? { scheme: match[1]!, rest: match[2]! } : null;
}

export interface UrlRules {
  /** Accepted schemes without the colon, such as `['http', 'https']`. */
  schemes: readonly string[];
  /** What the option accepts, for the message: `an http:// or https:// URL`. */
  expected: string;
  /**
   * What to say when the URL carries `user:password@` (refused always: `docker inspect`
   * shows log-opts); the default says only that it must not.
   */
  credentials?: string;
  /** Refuse a query or fragment (a base URL that paths are appended to). */
  noQuery?: boolean;
}

/**
 * One URL log-opt's value checked against the rules; the URL with no trailing slash on its
 * path when it is only `/`. Errors name the option and never quote a value with an @.
 */
export function parseUrl(key: string, value: string, rules: UrlRules): URL {
  const text = value.trim();
  let url: URL | null = null;
  try {
    url = new URL(text);
  } catch {
    /* reported below */
  }
  if (url && (url.username !== '' || url.password !== '')) {
    throw new InvalidOptionError(rules.credentials ?? `log opt '${key}' must not carry credentials (user:password@)`);
  }
  const why = !url
    ? 'not a URL'
    : !rules.schemes.includes(url.protocol.slice(0, -1))
      ? `unsupported scheme '${url.protocol.slice(0, -1)}'`
      : rules.noQuery && (url.search !== '' || url.hash !== '')
        ? 'it should have no query or fragment'
        : null;
  if (why !== null) throw invalidAddress(key, text, why, rules.expected);
  return url!;
}
