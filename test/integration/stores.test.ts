import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import type { FlowKey, NewBinding, Tx } from '../../src/domain/stores.ts';
import { createBindingStores } from '../../src/store/stores.ts';
import { countRows, embeddedRun, resetDb, testDb } from '../setup/database.ts';

// Store operations whose promise only PostgreSQL can keep: what they serialise and what they leave behind.

const stores = () => createBindingStores(testDb(), vaultFor(loadConfig({ NODE_ENV: 'test' })));
const key = (idHash: string): FlowKey => ({ channel: 'DEMO', userId: 'u', cardHash: 'card-x', idHash, mobileHash: 'm', detailsHash: 'd' });

describe('PostgreSQL stores', () => {
  beforeEach(resetDb);

  it('counts ownership probes one card at a time: concurrent requests each see the ones before', async function () {
    if (embeddedRun) this.skip(); // one session: nothing runs concurrently there
    const { bindings, ...all } = stores();
    const transaction = <T>(work: (tx: Tx) => Promise<T>) => all.transaction(work);
    const now = new Date();
    // each transaction stays open a while after counting, so without the card's lock they would all count 1
    const counts = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((id) =>
        transaction(async (tx) => {
          const seen = await bindings.countProbes(tx, key(id), true, now);
          await sleep(50);
          return seen;
        }),
      ),
    );
    expect(counts.sort()).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('makes no binding and leaves no person when another person holds the card', async () => {
    const { bindings, ...all } = stores();
    const transaction = <T>(work: (tx: Tx) => Promise<T>) => all.transaction(work);
    const binding = (idHash: string, userId: string): NewBinding => ({
      channel: 'DEMO',
      userId,
      idHash,
      idNumber: idHash,
      name: '张三',
      cardHash: 'card-x',
      cardNumber: '6222022005001212723',
      mobile: '13420504517',
      masked: '622202*********2723',
      bank: 'ICBC',
      cardType: 0,
      bankAddress: null,
      agreementNo: 'AG1',
      notifyUrl: null,
    });
    const now = new Date();
    expect(await transaction((tx) => bindings.bind(tx, binding('holder', 'u1'), now))).to.include({ samePerson: true });
    const before = [await countRows('persons'), await countRows('cards'), await countRows('bindings')];
    expect(await transaction((tx) => bindings.bind(tx, binding('someone-else', 'u2'), now))).to.include({ samePerson: false });
    expect([await countRows('persons'), await countRows('cards'), await countRows('bindings')]).to.deep.equal(before);
  });
});
