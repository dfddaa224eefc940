import type { Vault } from '../crypto/vault.ts';
import type { BindingStores } from '../domain/stores.ts';
import { PgAuditStore } from './audit-store.ts';
import { PgBindingStore } from './binding-store.ts';
import { PgEventStore } from './event-store.ts';
import { PgLimitStore } from './limit-store.ts';
import { transactor, type Db } from './sql.ts';
import { PgUnbindingStore } from './unbinding-store.ts';
import { PgVerificationStore } from './verification-store.ts';

/** The binding flows' stores on PostgreSQL. */
export function createBindingStores(db: Db, vault: Vault): BindingStores {
  return {
    ...transactor(db),
    verifications: new PgVerificationStore(db),
    limits: new PgLimitStore(db),
    bindings: new PgBindingStore(db, vault),
    unbindings: new PgUnbindingStore(db),
    events: new PgEventStore(db),
    audit: new PgAuditStore(db),
  };
}
