// The server's side of SASL SCRAM (RFC 5802; SHA-256 per RFC 7677, SHA-512 as Kafka's KIP-84
// has it), for the Kafka proxy's SASL listener (the mock cluster has none). As a broker keeps a
// SCRAM credential: a salt, the iteration count and the stored and server keys, never the
// password; the client proves it knows the password, and the server's signature proves to the
// client that the server knew the credential. test/unit/kafka-scram.test.ts checks it against
// RFC 7677's example exchange.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

const HASHES = { 'SCRAM-SHA-256': { hash: 'sha256', bytes: 32 }, 'SCRAM-SHA-512': { hash: 'sha512', bytes: 64 } } as const;

/** Kafka's minimum (and default) for a SCRAM credential. */
export const SCRAM_ITERATIONS = 4096;

/** What a step answers: the server's message, or the broker's refusal (a SaslAuthenticate error). */
export type ScramStep = { ok: true; message: string } | { ok: false; error: string };

/**
 * One client's authentication: `first` takes client-first and answers server-first, `final`
 * takes client-final and answers server-final; `username` is set once the proof checked.
 * `fixed` pins the server nonce and the salt (RFC 7677's example); random otherwise.
 */
export class ScramExchange {
  readonly mechanism: ScramMechanism;
  username: string | null = null;
  private readonly users: ReadonlyMap<string, string>;
  private readonly fixed: { nonce?: string; salt?: Buffer };
  private state: { user: string; nonce: string; salt: Buffer; clientFirstBare: string; serverFirst: string; gs2: string } | null = null;
  private done = false;

  constructor(mechanism: ScramMechanism, users: ReadonlyMap<string, string>, fixed: { nonce?: string; salt?: Buffer } = {}) {
    this.mechanism = mechanism;
    this.users = users;
    this.fixed = fixed;
  }

  private refuse(): ScramStep {
    this.done = true;
    // Kafka's words for every failure, so a client learns nothing of which part was wrong.
    return { ok: false, error: `Authentication failed during authentication due to invalid credentials with SASL mechanism ${this.mechanism}` };
  }

  first(clientFirst: string): ScramStep {
    if (this.state || this.done) return this.refuse();
    // gs2-header: `n,,` (no channel binding) or `y,,`; an authzid (`a=`) is not supported, as in Kafka.
    const match = /^([ny]),,(n=([^,]*),r=([^,]+)(?:,.*)?)$/.exec(clientFirst);
    if (!match) return this.refuse();
    const [, flag, clientFirstBare, saslName, clientNonce] = match as unknown as [string, string, string, string, string];
    const user = saslName.replaceAll('=2C', ',').replaceAll('=3D', '=');
    if (!this.users.has(user)) return this.refuse();
    const nonce = clientNonce + (this.fixed.nonce ?? randomBytes(18).toString('base64'));
    const salt = this.fixed.salt ?? randomBytes(16);
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${SCRAM_ITERATIONS}`;
    this.state = { user, nonce, salt, clientFirstBare, serverFirst, gs2: `${flag},,` };
    return { ok: true, message: serverFirst };
  }

  final(clientFinal: string): ScramStep {
    const state = this.state;
    if (!state || this.done) return this.refuse();
    this.done = true;
    const match = /^(c=([^,]*),r=([^,]*)(?:,[^p][^,]*)*),p=([^,]+)$/.exec(clientFinal);
    if (!match) return this.refuse();
    const [, withoutProof, binding, nonce, proof] = match as unknown as [string, string, string, string, string];
    if (binding !== Buffer.from(state.gs2).toString('base64') || nonce !== state.nonce) return this.refuse();
    const { hash, bytes } = HASHES[this.mechanism];
    const salted = pbkdf2Sync(this.users.get(state.user)!.normalize('NFKC'), state.salt, SCRAM_ITERATIONS, bytes, hash);
    const hmac = (key: Buffer, text: string): Buffer => createHmac(hash, key).update(text).digest();
    const storedKey = createHash(hash).update(hmac(salted, 'Client Key')).digest();
    const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const clientProof = Buffer.from(proof, 'base64');
    if (clientProof.length !== bytes) return this.refuse();
    // ClientKey = proof XOR ClientSignature; the password was right if H(ClientKey) is the stored key.
    const clientKey = Buffer.from(clientProof.map((b, i) => b ^ clientSignature[i]!));
    if (!timingSafeEqual(createHash(hash).update(clientKey).digest(), storedKey)) return this.refuse();
    this.username = state.user;
    return { ok: true, message: `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}` };
  }
}
