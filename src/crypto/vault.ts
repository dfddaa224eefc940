import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** AES-256-GCM for values at rest (each row keeps the key id), HMAC-SHA256 for lookups and signed tokens. */
export class Vault {
  constructor(
    private readonly keys: Map<string, Buffer>,
    readonly keyId: string,
    private readonly hashKey: Buffer,
  ) {}

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [iv, cipher.getAuthTag(), ct].map((b) => b.toString('base64')).join('.');
  }

  decrypt(value: string, keyId: string): string {
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`data key "${keyId}" is not configured`);
    const [iv, tag, ct] = value.split('.').map((p) => Buffer.from(p, 'base64'));
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  }

  /** A value encrypted with the id of its key, for a column with no key_id beside it. */
  seal(plain: string): string {
    return `${this.keyId}:${this.encrypt(plain)}`;
  }

  /** What seal made; a key no longer configured throws. */
  open(sealed: string): string {
    const at = sealed.indexOf(':');
    return this.decrypt(sealed.slice(at + 1), sealed.slice(0, at));
  }

  /** Keyed hash; the purpose keeps hashes of different kinds of value apart. */
  hash(purpose: string, value: string): string {
    return createHmac('sha256', this.hashKey).update(`${purpose}\0${value}`).digest('hex');
  }

  sign(purpose: string, value: string): string {
    return createHmac('sha256', this.hashKey).update(`${purpose}\0${value}`).digest('base64url');
  }

  verify(purpose: string, value: string, signature: string): boolean {
    const want = Buffer.from(this.sign(purpose, value));
    const got = Buffer.from(signature);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

/** The vault of a configuration: its data keys, the active one, and the hash key. */
export function vaultFor(config: { dataKeys: Map<string, Buffer>; dataKeyId: string; hashKey: Buffer }): Vault {
  return new Vault(config.dataKeys, config.dataKeyId, config.hashKey);
}
