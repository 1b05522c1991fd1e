// TLS client options from log-opts naming PEM files (a CA, a client certificate and its
// key), skip-verify and the server name. The files are read once, when the options are
// parsed at StartLogging, so a missing one fails `docker run` clearly and no send reads a disk.
import fs from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import { InvalidOptionError } from '../options/values.ts';

export interface TlsFiles {
  /** The log-opt keys (for messages) and the file each names; an empty or absent file is unset. */
  ca?: { key: string; file: string | undefined };
  cert?: { key: string; file: string | undefined };
  key?: { key: string; file: string | undefined };
  skipVerify?: boolean;
  /** SNI and the name checked; an IP address or '' sends none (the connection's host decides). */
  servername?: string;
}

export function tlsOptions(files: TlsFiles): tls.ConnectionOptions {
  const read = (entry: { key: string; file: string | undefined } | undefined): Buffer | undefined => {
    if (entry?.file === undefined || entry.file === '') return undefined;
    try {
      return fs.readFileSync(entry.file);
    } catch (err) {
      throw new InvalidOptionError(`cannot read the file of log opt '${entry.key}' (${entry.file}): ${(err as Error).message}`);
    }
  };
  const ca = read(files.ca);
  const cert = read(files.cert);
  const privateKey = read(files.key);
  if ((cert === undefined) !== (privateKey === undefined)) {
    throw new InvalidOptionError(`log opts '${files.cert?.key}' and '${files.key?.key}' must be given together`);
  }
  const options: tls.ConnectionOptions = { rejectUnauthorized: !files.skipVerify };
  if (ca !== undefined) options.ca = ca;
  if (cert !== undefined && privateKey !== undefined) {
    options.cert = cert;
    options.key = privateKey;
  }
  // SNI takes a name, never an IP address.
  const servername = files.servername ?? '';
  if (servername !== '' && net.isIP(servername) === 0) options.servername = servername;
  return options;
}

/** The three file options of a prefix (`syslog-tls-ca-cert`, `-cert`, `-key`) from log-opts. */
export function tlsFileOptions(prefix: string, values: Readonly<Record<string, unknown>>): Pick<TlsFiles, 'ca' | 'cert' | 'key'> {
  const entry = (suffix: string): { key: string; file: string | undefined } => {
    const file = values[`${prefix}-${suffix}`];
    return { key: `${prefix}-${suffix}`, file: typeof file === 'string' ? file : undefined };
  };
  return { ca: entry('ca-cert'), cert: entry('cert'), key: entry('key') };
}
