// A receiver's floor for a backend that sends over TCP (a stream protocol or HTTP/1.1): the
// exact bytes the backend sent for some lines, recorded on the way by a proxy, then written
// again back to back to a fresh receiver, with nothing encoding, waiting for an answer before
// the next request, or running the engine. What that takes is the receiver's own cost (and
// the kernel's): the fastest any sender could ship to it.
import net from 'node:net';

/** What one connection carried: the client's bytes, and how the server's answers are known to be complete. */
export interface RecordedConnection {
  sent: Buffer[];
  /** Bytes the server sent back (stream protocols: fluentd's acks). */
  answeredBytes: number;
  /** HTTP/1.1 responses the server sent back (0 for a stream protocol). */
  responses: number;
}

const HTTP_STATUS_LINE = Buffer.from('HTTP/1.1 ');

/** Counts the HTTP/1.1 status lines in a stream of responses, across chunk boundaries. */
class ResponseCounter {
  count = 0;
  private tail: Buffer = Buffer.alloc(0);
  add(chunk: Buffer): void {
    const data = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    // The receivers' bodies are JSON or protobuf answers that never hold a status line.
    for (let at = data.indexOf(HTTP_STATUS_LINE); at !== -1; at = data.indexOf(HTTP_STATUS_LINE, at + 1)) this.count++;
    this.tail = data.subarray(Math.max(0, data.length - (HTTP_STATUS_LINE.length - 1)));
  }
}

/** A TCP proxy on an ephemeral loopback port, forwarding to 127.0.0.1:`port` and recording each connection. */
export class WireRecorder {
  readonly connections: RecordedConnection[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(target: number) {
    this.server = net.createServer((client) => {
      const record: RecordedConnection = { sent: [], answeredBytes: 0, responses: 0 };
      this.connections.push(record);
      const counter = new ResponseCounter();
      const upstream = net.connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => {
        record.sent.push(chunk);
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        record.answeredBytes += chunk.length;
        counter.add(chunk);
        record.responses = counter.count;
        client.write(chunk);
      });
    });
  }

  static async start(target: number): Promise<WireRecorder> {
    const recorder = new WireRecorder(target);
    await new Promise<void>((resolve, reject) => {
      recorder.server.once('error', reject);
      recorder.server.listen(0, '127.0.0.1', () => resolve());
    });
    return recorder;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Writes each recorded connection's bytes in one go to 127.0.0.1:`port`, one connection after
 * another (the backend's connections followed one another too), and resolves once the server
 * has answered each as it did when recorded (as many HTTP responses, or as many bytes), or,
 * for a protocol without answers (syslog, GELF, fluentd without acks), once the server closed
 * the connection after reading to its end: it has read every byte. (The shipper counts such a
 * batch delivered once the kernel took it, up to a socket buffer earlier.)
 */
export async function replay(port: number, connections: readonly RecordedConnection[]): Promise<void> {
  for (const recorded of connections) {
    if (recorded.sent.length === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const counter = new ResponseCounter();
      let answered = 0;
      let written = false;
      const silent = recorded.responses === 0 && recorded.answeredBytes === 0;
      const check = (): void => {
        if (silent) return;
        const complete = recorded.responses > 0 ? counter.count >= recorded.responses : answered >= recorded.answeredBytes;
        if (written && complete) {
          socket.destroy();
          resolve();
        }
      };
      socket.on('data', (chunk: Buffer) => {
        answered += chunk.length;
        if (recorded.responses > 0) counter.add(chunk);
        check();
      });
      socket.on('error', reject);
      socket.on('close', () => (silent && written ? resolve() : reject(new Error(`the receiver closed the replayed connection (${counter.count}/${recorded.responses} responses, ${answered}/${recorded.answeredBytes} bytes)`))));
      socket.on('connect', () => {
        socket.setNoDelay(true);
        const bytes = Buffer.concat(recorded.sent);
        const wrote = (): void => {
          written = true;
          check();
        };
        if (silent) socket.end(bytes, wrote);
        else socket.write(bytes, wrote);
      });
    });
  }
}
