// journald's native protocol with the fields Docker's journald driver writes (moby
// daemon/logger/journald), one datagram per entry to the journal socket the plugin sees
// through its `journal` mount. Like Docker's newer drivers it adds SYSLOG_TIMESTAMP, the
// line's own time: a delivery delayed by an outage would otherwise only carry the time
// journald received it.
import { randomBytes } from 'node:crypto';
import { type Backend, type BackendFactory, type BatchLimits, type SendResult, SendError } from '../delivery/backend.ts';
import { UnixDatagramConnection } from '../transport/datagram.ts';
import { range, resultInLines } from '../transport/requests.ts';
import { rfc3339Nano } from '../delivery/timestamp.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';

export interface JournaldConfig {
  socketPath: string;
}

/** Inside the plugin: the host's journal directory is bind-mounted here (config.json). */
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

/**
 * MESSAGE bytes per entry. A datagram must fit the socket's send buffer (about 208 KiB by
 * default), and Node cannot pass the memfd the protocol allows for larger ones, so a longer
 * line is split into entries marked with Docker's CONTAINER_PARTIAL_* fields, never cut:
 * Docker's own driver writes every line over 16 KiB as such partial entries.
 */
export const MAX_MESSAGE_BYTES = 96 * 1024;

const PRIORITY_INFO = 6;
const PRIORITY_ERR = 3;

/** Docker's sanitising of attribute keys: upper case, `[A-Z0-9]` kept, others `_`, no leading `_`. */
export function journalKey(key: string): string {
  return key
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '_')
    .replace(/^_+/, '');
}

const NEWLINE = 0x0a;

/** `KEY=value\n`, or the length-prefixed form the protocol requires for a value with a newline. */
function field(key: string, value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  if (!bytes.includes(NEWLINE)) return Buffer.concat([Buffer.from(key + '='), bytes, NEWLINE_BUF]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([Buffer.from(key + '\n'), length, bytes, NEWLINE_BUF]);
}

const NEWLINE_BUF = Buffer.from([NEWLINE]);

/** journald keeps a field only if its name is 1-64 of `[A-Z0-9_]`, not starting with a digit or '_'. */
const VALID_FIELD_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Names this driver writes itself, which a parsed JSON line may not add to. */
const DRIVER_FIELDS = [
  'MESSAGE',
  'PRIORITY',
  'SYSLOG_TIMESTAMP',
  'CONTAINER_ID',
  'CONTAINER_ID_FULL',
  'CONTAINER_NAME',
  'CONTAINER_TAG',
  'IMAGE_NAME',
  'SYSLOG_IDENTIFIER',
  'CONTAINER_PARTIAL_ID',
  'CONTAINER_PARTIAL_ORDINAL',
  'CONTAINER_PARTIAL_LAST',
  'CONTAINER_PARTIAL_MESSAGE',
];

/** Builds the datagrams of one container; the fields that never change are built once. */
export class JournalEncoder {
  private readonly fixed: Buffer;
  /** The driver's own field names and the attributes': a JSON key never adds a second value to one. */
  private readonly ownFields: ReadonlySet<string>;

  constructor(container: ContainerContext) {
    const fields = [
      field('CONTAINER_ID', container.id.slice(0, 12)),
      field('CONTAINER_ID_FULL', container.id),
      field('CONTAINER_NAME', container.name),
      field('CONTAINER_TAG', container.tag),
      field('IMAGE_NAME', container.imageName),
      field('SYSLOG_IDENTIFIER', container.tag),
    ];
    for (const [key, value] of container.attributes) {
      const name = journalKey(key);
      if (name !== '') fields.push(field(name, value));
    }
    this.fixed = Buffer.concat(fields);
    this.ownFields = new Set([...DRIVER_FIELDS, ...container.attributes.map(([key]) => journalKey(key))]);
  }

  /** One datagram per entry: one per line, more for a line over MAX_MESSAGE_BYTES. */
  encode(line: OutgoingLine): Buffer[] {
    const head = Buffer.concat([
      field('PRIORITY', String(line.source === 'stderr' ? PRIORITY_ERR : PRIORITY_INFO)),
      field('SYSLOG_TIMESTAMP', rfc3339Nano(line.timeNano)),
      this.fixed,
    ]);
    if (line.line.length <= MAX_MESSAGE_BYTES) {
      return [Buffer.concat([head, field('MESSAGE', line.line), partialFields(line.partial), this.jsonFields(line.fields)])];
    }
    const id = randomBytes(32).toString('hex');
    const count = Math.ceil(line.line.length / MAX_MESSAGE_BYTES);
    const datagrams: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const piece = line.line.subarray(i * MAX_MESSAGE_BYTES, (i + 1) * MAX_MESSAGE_BYTES);
      const last = i === count - 1 && (line.partial?.last ?? true);
      datagrams.push(Buffer.concat([head, field('MESSAGE', piece), partialFields({ id, ordinal: i + 1, last })]));
    }
    return datagrams;
  }

  /**
   * A parsed JSON line's top-level keys as journal fields, named as attributes are; nested
   * values as compact JSON. Only on a line that fits one entry: the fields come from the
   * line's own bytes, so the datagram stays within twice MAX_MESSAGE_BYTES.
   */
  private jsonFields(fields: OutgoingLine['fields']): Buffer {
    if (!fields) return NOTHING;
    const out: Buffer[] = [];
    for (const [key, value] of Object.entries(fields)) {
      const name = journalKey(key);
      if (!VALID_FIELD_NAME.test(name) || this.ownFields.has(name)) continue;
      out.push(field(name, typeof value === 'string' ? value : JSON.stringify(value)));
    }
    return Buffer.concat(out);
  }
}

const NOTHING = Buffer.alloc(0);

function partialFields(partial: OutgoingLine['partial']): Buffer {
  if (!partial) return NOTHING;
  const fields = [
    field('CONTAINER_PARTIAL_ID', partial.id),
    field('CONTAINER_PARTIAL_ORDINAL', String(partial.ordinal)),
    field('CONTAINER_PARTIAL_LAST', String(partial.last)),
  ];
  if (!partial.last) fields.push(field('CONTAINER_PARTIAL_MESSAGE', 'true'));
  return Buffer.concat(fields);
}

class JournaldBackend implements Backend {
  private readonly encoder: JournalEncoder;
  private readonly connection: UnixDatagramConnection;

  constructor(config: JournaldConfig, container: ContainerContext) {
    this.encoder = new JournalEncoder(container);
    this.connection = new UnixDatagramConnection(config.socketPath);
  }

  /**
   * Datagrams the socket took are never sent twice: after a failure only the lines from the
   * one it hit go again, and a line whose entry the socket refuses as too long (its
   * attributes too) is rejected while the rest go on.
   */
  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    const datagrams: Buffer[] = [];
    const lineOf: number[] = [];
    lines.forEach((line, i) => {
      let encoded: Buffer[];
      try {
        encoded = this.encoder.encode(line);
      } catch (err) {
        throw new SendError(`journald: encoding an entry failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
      }
      for (const datagram of encoded) {
        datagrams.push(datagram);
        lineOf.push(i);
      }
    });
    const { givenUp, stopped } = await this.connection.sendAll(datagrams, signal, () => null);
    const result = resultInLines({ rejected: givenUp.map(({ index, reason }) => ({ index, code: 'too_large', reason })) }, lineOf);
    if (stopped) {
      const rejected = new Set(result.rejected?.map((r) => r.index));
      return { ...result, retry: { lines: range(0, lines.length).filter((i) => !rejected.has(i)), reason: stopped.reason } };
    }
    return result;
  }

  async close(): Promise<void> {
    this.connection.close();
  }
}

export const journaldFactory: BackendFactory<JournaldConfig> = {
  name: 'journald',
  // Docker's journald driver has only the common options (tag, labels, env), which the engine handles.
  // Docker's journald driver has no options but the shared ones.
  options: [],
  configure: () => ({ socketPath: JOURNAL_SOCKET }),
  batchLimits: (): BatchLimits => ({ maxLines: 1000, maxBytes: 4 << 20 }),
  create(config: JournaldConfig, container: ContainerContext): Backend {
    return new JournaldBackend(config, container);
  },
};
