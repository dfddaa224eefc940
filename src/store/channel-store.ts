import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { Op, type Transaction } from 'sequelize';
import type { Vault } from '../crypto/vault.ts';
import { CHANNEL_CODE, DEMO, notifyUrlProblem, type Channel } from '../domain/channel.ts';
import { modelsOf } from './models.ts';
import { sql, type Db } from './sql.ts';

export interface ChannelListing {
  code: string;
  card_types: number[];
  status: string;
  active_secrets: number;
  created_at: Date;
}

/** channels and channel_secrets: partner channels and their signing secrets (encrypted at rest), managed by `npm run channel`. */
export class ChannelStore {
  private readonly decrypted = new Map<string, string>();

  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly sandbox: boolean,
  ) {}

  /**
   * An active channel with its active secrets, newest first. Read from PostgreSQL on every request (one prepared
   * statement), so a rotation or a disable holds at once on every instance; only the decryption of a stored secret is
   * remembered (by its ciphertext, which never changes meaning).
   */
  async find(code: string): Promise<Channel | undefined> {
    if (code === DEMO.code) return this.sandbox ? DEMO : undefined;
    const rows = await sql<{
      card_types: number[];
      secret_enc: string;
      key_id: string;
      default_notify_url: string | null;
      hosts: string[] | null;
    }>(
      this.db,
      undefined,
      `SELECT c.card_types, s.secret_enc, s.key_id, c.default_notify_url,
          (SELECT array_agg(h.host) FROM channel_callback_hosts h WHERE h.channel = c.code) AS hosts
        FROM channels c JOIN channel_secrets s ON s.channel = c.code AND s.retired_at IS NULL
        WHERE c.code = $1 AND c.status = 'ACTIVE' ORDER BY s.id DESC`,
      [code],
    );
    if (rows.length === 0) return undefined;
    return {
      code,
      cardTypes: rows[0].card_types,
      secrets: rows.map((row) => this.secret(row.secret_enc, row.key_id)),
      callbackHosts: rows[0].hosts ?? [],
      defaultNotifyUrl: rows[0].default_notify_url,
    };
  }

  /** A host the channel's callback addresses may name (a DNS name or an IP address, as in a URL). */
  async addCallbackHost(code: string, host: string): Promise<void> {
    let parsed: string;
    try {
      parsed = new URL(`https://${host}/`).hostname;
    } catch {
      throw new Error(`not a host name: "${host}"`);
    }
    // an internationalised name is kept as a URL names it (punycode)
    if (parsed !== domainToASCII(host.toLowerCase()) && parsed !== host.toLowerCase()) {
      throw new Error(`a host is a name or address only (no scheme, port or path): "${host}"`);
    }
    await this.known(code);
    await sql(
      this.db,
      undefined,
      'INSERT INTO channel_callback_hosts (channel, host, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [code, parsed, new Date()],
    );
  }

  /** Removes a callback host; the channel's default address may not name it any more. */
  async removeCallbackHost(code: string, host: string): Promise<void> {
    const name = domainToASCII(host.toLowerCase()) || host.toLowerCase();
    const channel = await this.callbacksOf(code);
    if (channel.defaultNotifyUrl && new URL(channel.defaultNotifyUrl).hostname === name) {
      throw new Error(`the default address ${channel.defaultNotifyUrl} names ${name}: change or clear it first`);
    }
    await sql(this.db, undefined, 'DELETE FROM channel_callback_hosts WHERE channel = $1 AND host = $2', [code, name]);
  }

  /** Where the channel's events go when a flow names no address; `null` clears it. */
  async setDefaultNotifyUrl(code: string, url: string | null): Promise<void> {
    const channel = await this.callbacksOf(code);
    const problem = url === null ? undefined : url.length > 512 ? 'is over 512 characters' : notifyUrlProblem(url, channel);
    if (problem) throw new Error(`${url}: ${problem}`);
    await sql(this.db, undefined, 'UPDATE channels SET default_notify_url = $2 WHERE code = $1', [code, url && new URL(url).href]);
  }

  /** The channel's callback hosts and default address. */
  async callbacksOf(code: string): Promise<Pick<Channel, 'code' | 'callbackHosts' | 'defaultNotifyUrl'>> {
    const row = await this.known(code);
    const hosts = await sql<{ host: string }>(
      this.db,
      undefined,
      'SELECT host FROM channel_callback_hosts WHERE channel = $1 ORDER BY host',
      [code],
    );
    return { code, callbackHosts: hosts.map((h) => h.host), defaultNotifyUrl: row.default_notify_url };
  }

  private async known(code: string): Promise<{ default_notify_url: string | null }> {
    const [row] = await sql<{ default_notify_url: string | null }>(
      this.db,
      undefined,
      'SELECT default_notify_url FROM channels WHERE code = $1',
      [code],
    );
    if (!row) throw new Error(`no channel "${code}"`);
    return row;
  }

  private secret(enc: string, keyId: string): string {
    const memo = `${keyId}:${enc}`;
    let plain = this.decrypted.get(memo);
    if (plain === undefined) {
      if (this.decrypted.size >= 1000) this.decrypted.clear();
      this.decrypted.set(memo, (plain = this.vault.decrypt(enc, keyId)));
    }
    return plain;
  }

  /** Adds a channel and returns its first secret (shown once, never stored in clear). */
  async add(code: string, cardTypes: number[] = [0, 1]): Promise<string> {
    if (!CHANNEL_CODE.test(code) || code === DEMO.code) throw new Error(`channel code must be 2-32 of A-Z, 0-9, _ and not DEMO: "${code}"`);
    return this.db.transaction(async (transaction) => {
      await modelsOf(this.db).Channel.create({ code, card_types: cardTypes, created_at: new Date() }, { transaction });
      return this.newSecret(code, transaction);
    });
  }

  /** A new secret; the previous one stays valid until the next rotation, so partners can switch without a gap. */
  async rotate(code: string): Promise<string> {
    const { Channel: Channels, ChannelSecret } = modelsOf(this.db);
    return this.db.transaction(async (transaction) => {
      if (!(await Channels.findByPk(code, { transaction }))) throw new Error(`no channel "${code}"`);
      const newest = await ChannelSecret.findOne({ where: { channel: code, retired_at: null }, order: [['id', 'DESC']], transaction });
      if (newest) {
        await ChannelSecret.update(
          { retired_at: new Date() },
          { where: { channel: code, retired_at: null, id: { [Op.ne]: newest.get('id') as string } }, transaction },
        );
      }
      return this.newSecret(code, transaction);
    });
  }

  async disable(code: string): Promise<void> {
    const [changed] = await modelsOf(this.db).Channel.update({ status: 'DISABLED' }, { where: { code } });
    if (changed === 0) throw new Error(`no channel "${code}"`);
  }

  async list(): Promise<ChannelListing[]> {
    const { Channel: Channels, ChannelSecret } = modelsOf(this.db);
    const channels = (await Channels.findAll({ order: [['code', 'ASC']] })).map((row) => row.get({ plain: true }));
    const active = await ChannelSecret.count({ where: { retired_at: null }, group: ['channel'] });
    const counts = new Map(active.map((row) => [String(row.channel), Number(row.count)]));
    return channels.map((c) => ({ ...c, active_secrets: counts.get(c.code) ?? 0 }));
  }

  private async newSecret(code: string, transaction: Transaction): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    await modelsOf(this.db).ChannelSecret.create(
      { channel: code, secret_enc: this.vault.encrypt(secret), key_id: this.vault.keyId, created_at: new Date() },
      { transaction },
    );
    return secret;
  }
}
