// The `parse-json` log-opt: a line (or multiline event) that is a JSON object ships with its
// keys as structured fields beside the raw line. Only a line whose first non-blank byte is
// '{' is parsed, so plain text costs one byte test; arrays, scalars, invalid JSON and bytes
// that are not UTF-8 ship as plain lines.
import { isUtf8 } from 'node:buffer';

const OPEN_BRACE = 0x7b;

/** JSON's own whitespace: space, tab, line feed, carriage return. */
function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/** The line's JSON object, or null when the line is not one. */
export function jsonObjectFields(line: Buffer): Record<string, unknown> | null {
  let i = 0;
  while (i < line.length && isJsonSpace(line[i]!)) i++;
  if (line[i] !== OPEN_BRACE || !isUtf8(line)) return null;
  try {
    // Starting with '{', valid JSON is an object.
    return JSON.parse(line.toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
