import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';
import { Vault, vaultFor } from '../../src/crypto/vault.ts';
import { rotateKeys } from '../../src/store/key-rotation.ts';
import { resetDb, testDb } from '../setup/database.ts';
import { bindNewCard, idNumber, seedExistingCard, seedNewCard, startService } from '../setup/service.ts';

const key = (b: number) => Buffer.alloc(32, b).toString('base64');
const K1 = `k1:${key(1)}`;
const K2 = `k2:${key(2)}`;

async function keyIds(): Promise<string[]> {
  const [rows] = await testDb().query(
    'SELECT key_id FROM persons UNION ALL SELECT key_id FROM cards UNION ALL SELECT key_id FROM channel_secrets ORDER BY 1',
  );
  return (rows as { key_id: string }[]).map((r) => r.key_id);
}

describe('data key rotation', () => {
  beforeEach(resetDb);

  it('re-encrypts in batches while the service keeps reading and writing, and resumes where it stopped', async () => {
    const old = await startService({ DATA_KEYS: K1 });
    const secret = await old.addChannel('ACME');
    await bindNewCard(old, seedNewCard());
    await bindNewCard(
      old,
      seedNewCard({ user_id: 'u2', bank_card: '6222020000000001111', id_number: idNumber(5), user_mobile: '13800000005' }),
    );
    await old.stop();
    expect(new Set(await keyIds())).to.deep.equal(new Set(['k1']));

    // both keys configured, k2 active: one batch of one row, as if the command had crashed after it
    const both = await startService({ DATA_KEYS: `${K1},${K2}`, DATA_KEY_ID: 'k2' });
    both.secrets.set('ACME', secret);
    const config = loadConfig({ DATA_KEYS: `${K1},${K2}`, DATA_KEY_ID: 'k2' });
    const vault = vaultFor(config);
    const seen: string[] = [];
    await rotateKeys(testDb(), vault, 1, (t, done, total) => seen.push(`${t} ${done}/${total}`), 1);
    expect((await keyIds()).filter((k) => k === 'k2')).to.have.length(1);
    // mid-rotation: reads and writes go on
    expect((await both.bind(seedExistingCard)).body.data.status).to.equal('BOUND');
    expect((await both.list('u', 'ACME')).status).to.equal(200);
    await bindNewCard(
      both,
      seedNewCard({ user_id: 'u3', bank_card: '6222020000000002222', id_number: idNumber(6), user_mobile: '13800000006' }),
    );

    seen.length = 0;
    await rotateKeys(testDb(), vault, 2, (t, done, total) => seen.push(`${t} ${done}/${total}`));
    expect(new Set(await keyIds())).to.deep.equal(new Set(['k2']));
    // the resumed run found only what the first batch had left, and reported each table to its end
    expect(seen).to.deep.equal(['persons 0/1', 'persons 1/1', 'cards 0/2', 'cards 2/2', 'channel_secrets 0/1', 'channel_secrets 1/1']);
    await both.stop();

    // the old key can go: everything decrypts under k2 alone
    const only = await startService({ DATA_KEYS: K2 });
    only.secrets.set('ACME', secret);
    try {
      expect((await only.list('u', 'ACME')).status).to.equal(200);
      const [rows] = (await testDb().query('SELECT card_enc, key_id FROM cards')) as [{ card_enc: string; key_id: string }[], unknown];
      const k2 = new Vault(new Map([['k2', Buffer.from(key(2), 'base64')]]), 'k2', config.hashKey);
      expect(rows.map((r) => k2.decrypt(r.card_enc, r.key_id)).sort()).to.deep.equal([
        '6222020000000001111',
        '6222020000000002222',
        '6222022005001212723',
      ]);
    } finally {
      await only.stop();
    }
  });
});
