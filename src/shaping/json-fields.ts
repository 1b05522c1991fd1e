// The `parse-json` log-opt: a line (or multiline event) that is a JSON object ships with its
// keys as structured fields beside the raw line. Only a line whose first non-blank byte is
// '{' is parsed, so plain text costs one byte test; arrays, scalars, invalid JSON and bytes
// that are not UTF-8 ship as plain lines, and so does an object nested too deep for every
// backend to take (it would otherwise fail each send of its batch).
import { isUtf8 } from 'node:buffer';

/**
 * Levels of objects and arrays a parsed line may have, the line's own object being the first.
 * The encoders give out far deeper (measured on lines of nested objects: fluentd's msgpack
 * encoder at 101 levels, JSON.stringify (Elasticsearch, journald) at about 4,400, the Struct
 * of a Cloud Logging entry at about 3,100), but Elasticsearch refuses a document with objects
 * deeper than `index.mapping.depth.limit`, 20 by default, and protobuf's parsers default to
 * a recursion limit of 100 messages, which a Struct (three messages a level) reaches at about
 * 32 levels: 20 is the strictest of these, and a log line nested deeper is not a record
 * anyone queries by field. No size bound is needed: every encoder takes the longest line
 * (1 MiB) whole.
 */
export const MAX_JSON_DEPTH = 20;

/** What jsonObjectFields returns for an object nested deeper than MAX_JSON_DEPTH. */
export const TOO_DEEP = 'too deep';

const OPEN_BRACE = 0x7b;

/** JSON's own whitespace: space, tab, line feed, carriage return. */
function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/** The line's JSON object; null when the line is not one; TOO_DEEP when it nests too deep. */
export function jsonObjectFields(line: Buffer): Record<string, unknown> | typeof TOO_DEEP | null {
  let i = 0;
  while (i < line.length && isJsonSpace(line[i]!)) i++;
  if (line[i] !== OPEN_BRACE || !isUtf8(line)) return null;
  let fields: Record<string, unknown>;
  try {
    // Starting with '{', valid JSON is an object. V8 parses any depth without recursing.
    fields = JSON.parse(line.toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  return withinDepth(fields, MAX_JSON_DEPTH) ? fields : TOO_DEEP;
}

/** Whether `value` (an object or array) has at most `levels` levels; stops at the first too deep. */
function withinDepth(value: object, levels: number): boolean {
  if (levels === 0) return false;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (typeof child === 'object' && child !== null && !withinDepth(child, levels - 1)) return false;
  }
  return true;
}
