// The Kafka proxy's SCRAM server (test/integration/lib/scram.ts) against RFC 7677's
// SCRAM-SHA-256 example (section 3: user "user", password "pencil", its nonces and salt), so
// the integration tests' endpoint is itself known right; and what it refuses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScramExchange } from '../integration/lib/scram.ts';

const USERS = new Map([['user', 'pencil']]);
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const rfcExchange = (users = USERS) =>
  new ScramExchange('SCRAM-SHA-256', users, { nonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') });

describe('the proxy SCRAM server', () => {
  it("RFC 7677's SCRAM-SHA-256 exchange: the same server-first, the client's proof accepted, the same server signature", () => {
    const scram = rfcExchange();
    assert.deepEqual(scram.first(RFC.clientFirst), { ok: true, message: RFC.serverFirst });
    assert.deepEqual(scram.final(RFC.clientFinal), { ok: true, message: RFC.serverFinal });
    assert.equal(scram.username, 'user');
  });

  it("the same proof from a server that has another password refuses it, in Kafka's words", () => {
    const scram = rfcExchange(new Map([['user', 'pencils']]));
    assert.equal(scram.first(RFC.clientFirst).ok, true);
    assert.deepEqual(scram.final(RFC.clientFinal), { ok: false, error: 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256' });
    assert.equal(scram.username, null);
  });

  it('refuses an unknown user, a changed nonce or channel binding, a proof replayed, and steps out of order', () => {
    assert.equal(rfcExchange().first('n,,n=other,r=rOprNGfwEbeRWgbNEkqO').ok, false);
    assert.equal(rfcExchange().final(RFC.clientFinal).ok, false, 'client-final before client-first');
    for (const final of [RFC.clientFinal.replace('r=rOpr', 'r=xOpr'), RFC.clientFinal.replace('c=biws', 'c=eSws'), RFC.clientFinal.replace('p=dHzb', 'p=eHzb')]) {
      const scram = rfcExchange();
      scram.first(RFC.clientFirst);
      assert.equal(scram.final(final).ok, false, final);
    }
    const scram = rfcExchange();
    scram.first(RFC.clientFirst);
    assert.equal(scram.final(RFC.clientFinal).ok, true);
    assert.equal(scram.final(RFC.clientFinal).ok, false, 'one exchange per authentication');
  });

  it('SCRAM-SHA-512: a random nonce and salt, a proof computed as a client does', async () => {
    const { createHash, createHmac, pbkdf2Sync } = await import('node:crypto');
    const scram = new ScramExchange('SCRAM-SHA-512', new Map([['logship', 'p4ss']]));
    const first = scram.first('n,,n=logship,r=abc');
    assert.ok(first.ok);
    const { r, s, i } = Object.fromEntries(first.message.split(',').map((kv) => [kv[0], kv.slice(2)])) as { r: string; s: string; i: string };
    assert.ok(r.startsWith('abc') && r.length > 3 && Number(i) === 4096);
    const salted = pbkdf2Sync('p4ss', Buffer.from(s, 'base64'), 4096, 64, 'sha512');
    const hmac = (key: Buffer, text: string) => createHmac('sha512', key).update(text).digest();
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=biws,r=${r}`;
    const authMessage = `n=logship,r=abc,${first.message},${withoutProof}`;
    const signature = hmac(createHash('sha512').update(clientKey).digest(), authMessage);
    const proof = Buffer.from(clientKey.map((b, k) => b ^ signature[k]!)).toString('base64');
    assert.deepEqual(scram.final(`${withoutProof},p=${proof}`), { ok: true, message: `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}` });
  });
});
