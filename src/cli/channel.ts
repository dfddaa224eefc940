// `npm run channel -- add CODE [--card-types 0,1] | rotate CODE | disable CODE | list`
//                   `callbacks CODE add|remove HOST | callbacks CODE default URL|none | callbacks CODE list`
// Manages partner channels on DATABASE_URL. A new secret is printed once, here, and stored only encrypted.
import { loadConfig } from '../config.ts';
import { vaultFor } from '../crypto/vault.ts';
import { ChannelStore } from '../store/channel-store.ts';
import { connect, migrate } from '../store/db.ts';

const USAGE =
  'usage: npm run channel -- add CODE [--card-types 0,1] | rotate CODE | disable CODE | list\n' +
  '       npm run channel -- callbacks CODE add HOST | remove HOST | default URL|none | list';

async function run(args: string[], print: (line: string) => void): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error("DATABASE_URL is not set: channels live in the service's PostgreSQL");
  const db = connect(config.databaseUrl, 1);
  try {
    await migrate(db, config.databaseUrl);
    const store = new ChannelStore(db, vaultFor(config), false);
    const [verb, code] = args;
    if (verb === 'list') {
      for (const c of await store.list())
        print(`${c.code}\t${c.status}\tcard types ${c.card_types.join('+')}\t${c.active_secrets} active secret(s)`);
      return;
    }
    if (!code) throw new Error(USAGE);
    if (verb === 'callbacks') return await callbacks(store, code, args.slice(2), print);
    if (verb === 'add') {
      const flag = args.indexOf('--card-types');
      const types = flag > 0 ? args[flag + 1].split(',').map(Number) : [0, 1];
      if (types.length === 0 || types.some((t) => t !== 0 && t !== 1)) throw new Error('--card-types takes 0, 1 or 0,1');
      print(`channel ${code} added. Its secret, shown this once:\n${await store.add(code, types)}`);
    } else if (verb === 'rotate') {
      print(
        `channel ${code}: new secret, shown this once (the previous one stays valid until the next rotation):\n${await store.rotate(code)}`,
      );
    } else if (verb === 'disable') {
      await store.disable(code);
      print(`channel ${code} disabled: its requests now answer 404`);
    } else {
      throw new Error(USAGE);
    }
  } finally {
    await db.close();
  }
}

/** The channel's callback hosts (the hosts a notify_url may name) and its default address. */
async function callbacks(store: ChannelStore, code: string, [action, value]: string[], print: (line: string) => void): Promise<void> {
  if (action === 'add' && value) {
    await store.addCallbackHost(code, value);
    print(`channel ${code}: callback addresses may now name ${value.toLowerCase()}`);
  } else if (action === 'remove' && value) {
    await store.removeCallbackHost(code, value);
    print(`channel ${code}: ${value.toLowerCase()} removed from the callback hosts`);
  } else if (action === 'default' && value) {
    await store.setDefaultNotifyUrl(code, value === 'none' ? null : value);
    print(`channel ${code}: default callback address ${value === 'none' ? 'cleared' : value}`);
  } else if (action === 'list') {
    const channel = await store.callbacksOf(code);
    print(`channel ${code}: default ${channel.defaultNotifyUrl ?? '(none)'}`);
    for (const host of channel.callbackHosts) print(`host\t${host}`);
  } else {
    throw new Error(USAGE);
  }
}

run(process.argv.slice(2), (l) => console.log(l)).catch((e) => {
  console.error(`channel: ${e instanceof Error ? e.message : e}`);
  process.exit(2);
});
