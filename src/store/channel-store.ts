import { randomBytes } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import type { Vault } from '../crypto/vault.ts';
import { CHANNEL_CODE, DEMO, type Channel } from '../domain/channel.ts';
import { sql } from './sql.ts';

export interface ChannelListing {
  code: string;
  card_types: number[];
  status: string;
  active_secrets: number;
  created_at: Date;
}

/** Partner channels and their signing secrets (encrypted at rest), managed by `npm run channel`. */
export class ChannelStore {
  private readonly decrypted = new Map<string, string>();

  constructor(private readonly db: Sequelize, private readonly vault: Vault, private readonly sandbox: boolean) {}

  /**
   * An active channel with its active secrets, newest first. Read from PostgreSQL on every request, so a rotation or a
   * disable holds at once on every instance; only the decryption of a stored secret is remembered (by its ciphertext,
   * which never changes meaning).
   */
  async find(code: string): Promise<Channel | undefined> {
    if (code === DEMO.code) return this.sandbox ? DEMO : undefined;
    const rows = await sql<{ card_types: number[]; secret_enc: string; key_id: string }>(this.db, undefined,
      `SELECT c.card_types, s.secret_enc, s.key_id FROM channels c
         JOIN channel_secrets s ON s.channel = c.code AND s.retired_at IS NULL
        WHERE c.code = $1 AND c.status = 'ACTIVE' ORDER BY s.id DESC`, [code]);
    if (rows.length === 0) return undefined;
    return { code, cardTypes: rows[0].card_types, secrets: rows.map((r) => this.secret(r.secret_enc, r.key_id)) };
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
    return this.db.transaction(async (t) => {
      await this.db.query('INSERT INTO channels (code, card_types, created_at) VALUES (:code, ARRAY[:types]::smallint[], now())',
        { replacements: { code, types: cardTypes }, transaction: t });
      return this.newSecret(code, t);
    });
  }

  /** A new secret; the previous one stays valid until the next rotation, so partners can switch without a gap. */
  async rotate(code: string): Promise<string> {
    return this.db.transaction(async (t) => {
      await this.mustExist(code, t);
      await this.db.query(
        `UPDATE channel_secrets SET retired_at = now() WHERE channel = :code AND retired_at IS NULL
           AND id NOT IN (SELECT id FROM channel_secrets WHERE channel = :code AND retired_at IS NULL ORDER BY id DESC LIMIT 1)`,
        { replacements: { code }, transaction: t });
      return this.newSecret(code, t);
    });
  }

  async disable(code: string): Promise<void> {
    const [, meta] = await this.db.query("UPDATE channels SET status = 'DISABLED' WHERE code = :code", { replacements: { code } }) as [unknown, { rowCount: number }];
    if (meta.rowCount === 0) throw new Error(`no channel "${code}"`);
  }

  async list(): Promise<ChannelListing[]> {
    const [rows] = await this.db.query(
      `SELECT c.code, c.card_types, c.status, c.created_at, count(s.id)::int AS active_secrets FROM channels c
         LEFT JOIN channel_secrets s ON s.channel = c.code AND s.retired_at IS NULL
        GROUP BY c.code ORDER BY c.code`);
    return rows as ChannelListing[];
  }

  private async mustExist(code: string, t: import('sequelize').Transaction): Promise<void> {
    const [rows] = await this.db.query('SELECT 1 FROM channels WHERE code = :code', { replacements: { code }, transaction: t });
    if (rows.length === 0) throw new Error(`no channel "${code}"`);
  }

  private async newSecret(code: string, t: import('sequelize').Transaction): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    await this.db.query(
      'INSERT INTO channel_secrets (channel, secret_enc, key_id, created_at) VALUES (:code, :enc, :keyId, now())',
      { replacements: { code, enc: this.vault.encrypt(secret), keyId: this.vault.keyId }, transaction: t });
    return secret;
  }
}
