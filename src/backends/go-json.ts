// JSON as Go's encoding/json writes it, for the backends whose Docker driver marshals its
// records with it (gelf, splunk): a receiver's parser then sees the same values Docker's
// driver gave it. Go replaces each byte that is not UTF-8 with U+FFFD (one per byte, where
// Node's decoder gives one per broken sequence) and escapes <, >, & and U+2028/U+2029.
import { isUtf8 } from 'node:buffer';

const HTML = /[<>&\u2028\u2029]/;
const HTML_ALL = /[<>&\u2028\u2029]/g;
const escapeHtml = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** A JS string as a Go JSON string literal. */
export function goJsonString(text: string): string {
  const json = JSON.stringify(text);
  return HTML.test(json) ? json.replace(HTML_ALL, escapeHtml) : json;
}

/** A value from JSON.parse as Go marshals it (<, >, & only ever occur inside its strings). */
export function goJsonValue(value: unknown): string {
  const json = JSON.stringify(value);
  return HTML.test(json) ? json.replace(HTML_ALL, escapeHtml) : json;
}

/** Bytes (a log line) as Go's `json.Marshal(string(bytes))` writes them. */
export function goJsonBytes(bytes: Buffer): string {
  return goJsonString(goString(bytes));
}

/**
 * Whether bytes are, as they are, the text of their Go JSON string: all printable ASCII that
 * Go leaves alone (not `"`, a backslash, `<`, `>` or `&`). Such a line goes into a record
 * from its bytes, with no string made of it and encoded again.
 */
export function isPlainJsonText(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) return false;
  }
  return true;
}

/** Bytes as Go's encoding/json decodes a []byte it marshals as a string: U+FFFD for each invalid byte. */
export function goString(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  let runStart = 0;
  let i = 0;
  while (i < bytes.length) {
    const size = utf8SequenceLength(bytes, i);
    if (size > 0) {
      i += size;
      continue;
    }
    out += bytes.toString('utf8', runStart, i) + '\ufffd';
    i++;
    runStart = i;
  }
  return out + bytes.toString('utf8', runStart, i);
}

/** The length of the valid UTF-8 sequence at `i`, or 0 (Go's utf8.DecodeRune's rules). */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c0 = b[i]!;
  if (c0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c0 >= 0xc2 && c0 <= 0xdf) return cont(1) ? 2 : 0;
  if (c0 >= 0xe0 && c0 <= 0xef) {
    const lo = c0 === 0xe0 ? 0xa0 : 0x80;
    const hi = c0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c0 >= 0xf0 && c0 <= 0xf4) {
    const lo = c0 === 0xf0 ? 0x90 : 0x80;
    const hi = c0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Go's maximum nesting of a JSON value (encoding/json's scanner). */
const MAX_DEPTH = 10_000;

/**
 * The line compacted as Go writes a json.RawMessage it unmarshalled (blanks outside strings
 * removed, <, >, & and U+2028/U+2029 escaped, nothing else re-encoded: numbers keep their
 * digits), or null when the line is not one JSON value, as Go's json.Unmarshal decides.
 */
export function compactJson(bytes: Buffer): Buffer | null {
  const out = Buffer.allocUnsafe(bytes.length * 6);
  let o = 0;
  let i = 0;
  const n = bytes.length;
  const blank = (): void => {
    while (i < n && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  };
  const put = (c: number): void => {
    out[o++] = c;
  };
  const putEscape = (code: number): void => {
    o += out.write(`\\u${code.toString(16).padStart(4, '0')}`, o, 'latin1');
  };
  const string = (): boolean => {
    put(bytes[i++]!); // the opening quote
    while (i < n) {
      const c = bytes[i]!;
      if (c === 0x22) {
        put(c);
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = bytes[i + 1];
        if (e === 0x75) {
          for (let k = 2; k < 6; k++) if (!isHex(bytes[i + k])) return false;
          bytes.copy(out, o, i, i + 6);
          o += 6;
          i += 6;
          continue;
        }
        if (e === undefined || !ESCAPES.has(e)) return false;
        put(c);
        put(e);
        i += 2;
        continue;
      }
      if (c === 0x3c || c === 0x3e || c === 0x26) {
        putEscape(c);
        i++;
        continue;
      }
      if (c === 0xe2 && bytes[i + 1] === 0x80 && (bytes[i + 2] === 0xa8 || bytes[i + 2] === 0xa9)) {
        putEscape(bytes[i + 2] === 0xa8 ? 0x2028 : 0x2029);
        i += 3;
        continue;
      }
      put(c);
      i++;
    }
    return false;
  };
  const number = (): boolean => {
    const start = i;
    if (bytes[i] === 0x2d) i++;
    if (bytes[i] === 0x30) i++;
    else if (isDigit19(bytes[i])) while (isDigit(bytes[i])) i++;
    else return false;
    if (bytes[i] === 0x2e) {
      i++;
      if (!isDigit(bytes[i])) return false;
      while (isDigit(bytes[i])) i++;
    }
    if (bytes[i] === 0x65 || bytes[i] === 0x45) {
      i++;
      if (bytes[i] === 0x2b || bytes[i] === 0x2d) i++;
      if (!isDigit(bytes[i])) return false;
      while (isDigit(bytes[i])) i++;
    }
    bytes.copy(out, o, start, i);
    o += i - start;
    return true;
  };
  const literal = (word: Buffer): boolean => {
    if (!bytes.subarray(i, i + word.length).equals(word)) return false;
    word.copy(out, o);
    o += word.length;
    i += word.length;
    return true;
  };
  // Iterative, so a deeply nested line cannot exhaust the stack: `stack` holds the open
  // containers ('{' or '['), `expect` what may come next.
  const stack: number[] = [];
  let expect: 'value' | 'key' | 'after' = 'value';
  for (;;) {
    blank();
    if (expect === 'value' || expect === 'key') {
      const c = bytes[i];
      if (c === undefined) return null;
      if (expect === 'key') {
        if (c === 0x7d && out[o - 1] === 0x7b) {
          put(c);
          i++;
          stack.pop();
          expect = 'after';
          continue;
        }
        if (c !== 0x22 || !string()) return null;
        blank();
        if (bytes[i] !== 0x3a) return null;
        put(0x3a);
        i++;
        expect = 'value';
        continue;
      }
      if (c === 0x7b || c === 0x5b) {
        if (stack.length >= MAX_DEPTH) return null;
        stack.push(c);
        put(c);
        i++;
        if (c === 0x7b) {
          expect = 'key';
          continue;
        }
        blank();
        if (bytes[i] === 0x5d) {
          put(0x5d);
          i++;
          stack.pop();
          expect = 'after';
        }
        continue;
      }
      const ok =
        c === 0x22 ? string()
        : c === 0x74 ? literal(TRUE)
        : c === 0x66 ? literal(FALSE)
        : c === 0x6e ? literal(NULL)
        : number();
      if (!ok) return null;
      expect = 'after';
      continue;
    }
    // after a value
    const open = stack[stack.length - 1];
    if (open === undefined) return i === n ? Buffer.from(out.subarray(0, o)) : null;
    const c = bytes[i];
    if (c === 0x2c) {
      put(c);
      i++;
      expect = open === 0x7b ? 'key' : 'value';
      continue;
    }
    if ((open === 0x7b && c === 0x7d) || (open === 0x5b && c === 0x5d)) {
      put(c);
      i++;
      stack.pop();
      continue;
    }
    return null;
  }
}

const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const isDigit19 = (c: number | undefined): boolean => c !== undefined && c >= 0x31 && c <= 0x39;
const isHex = (c: number | undefined): boolean =>
  c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46));
