import type {
  AuditEvent,
  BindingStores,
  BoundCard,
  CardRef,
  FlowKey,
  NewBinding,
  Owner,
  LimitCounts,
  Tx,
  Verification,
  VerificationChanges,
} from '../../src/domain/stores.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface Card {
  id: string;
  cardHash: string;
  personIdHash: string;
  masked: string;
  bank: string;
  cardType: number;
  agreementNo: string;
}
interface Tables {
  verifications: Verification[];
  smsSends: { mobileHash: string; cardHash: string; at: Date }[];
  reviews: { cardHash: string; idHash: string; mobileHash: string; at: Date }[];
  probes: { cardHash: string; idHash: string; at: Date }[];
  cards: Card[];
  persons: string[];
  bindings: { channel: string; userId: string; cardId: string; at: Date }[];
  audit: AuditEvent[];
}

/**
 * The binding flows' stores in memory, behaving as the PostgreSQL ones do where the flows can tell: transactions run
 * one at a time (every lock the real stores take is then held), and a transaction whose work throws leaves no trace.
 */
export class MemoryStores implements BindingStores {
  tables: Tables = { verifications: [], smsSends: [], reviews: [], probes: [], cards: [], persons: [], bindings: [], audit: [] };
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  /** transactions begun, for tests that count phases */
  transactions = 0;

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      this.transactions++;
      const before = structuredClone(this.tables);
      try {
        return await work({} as Tx);
      } catch (e) {
        this.tables = before;
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private ownerOf(key: FlowKey): Owner | undefined {
    const card = this.tables.cards.find((c) => c.cardHash === key.cardHash);
    if (!card) return undefined;
    const mine = this.tables.bindings.some((b) => b.channel === key.channel && b.userId === key.userId && b.cardId === card.id);
    return { cardId: card.id, samePerson: card.personIdHash === key.idHash, mine };
  }

  private row(id: string): Verification {
    const row = this.tables.verifications.find((v) => v.id === id);
    if (!row) throw new Error(`no verification ${id}`);
    return row;
  }

  private write(flow: Verification, changes: VerificationChanges, now: Date): Verification {
    Object.assign(this.row(flow.id), structuredClone(changes), { updated_at: now });
    return { ...flow, ...changes, updated_at: now };
  }

  verifications = {
    openForFirstCall: async (_tx: Tx, key: FlowKey, now: Date) => {
      let flow = this.tables.verifications.find(
        (v) => v.channel === key.channel && v.user_id === key.userId && v.card_hash === key.cardHash,
      );
      if (!flow) {
        flow = {
          id: String(this.nextId++),
          channel: key.channel,
          user_id: key.userId,
          card_hash: key.cardHash,
          details_hash: key.detailsHash,
          id_number_hash: key.idHash,
          mobile_hash: key.mobileHash,
          generation: 1,
          auth_status: null,
          code_seq: 0,
          code_hash: null,
          code_expires_at: null,
          code_sent_at: null,
          code_attempts: 0,
          code_tried: [],
          code_verified_at: null,
          bound_card_id: null,
          busy_until: null,
          created_at: now,
          updated_at: now,
        };
        this.tables.verifications.push(flow);
      }
      return { flow: structuredClone(flow), owner: this.ownerOf(key) };
    },
    lockForConfirmation: async (_tx: Tx, key: FlowKey) => {
      const flow = this.tables.verifications.find(
        (v) => v.channel === key.channel && v.user_id === key.userId && v.card_hash === key.cardHash,
      );
      return flow && structuredClone(flow);
    },
    update: async (_tx: Tx, flow: Verification, changes: VerificationChanges, now: Date) => this.write(flow, changes, now),
    issueCode: async (_tx: Tx, flow: Verification, changes: VerificationChanges, now: Date) => {
      this.tables.smsSends.push({ mobileHash: flow.mobile_hash, cardHash: flow.card_hash, at: now });
      return this.write(flow, changes, now);
    },
    startReview: async (_tx: Tx, flow: Verification, leaseUntil: Date, now: Date) => {
      this.tables.reviews.push({ cardHash: flow.card_hash, idHash: flow.id_number_hash, mobileHash: flow.mobile_hash, at: now });
      return this.write(flow, { busy_until: leaseUntil }, now);
    },
    releaseLease: async (flow: Verification) => {
      const row = this.row(flow.id);
      if (row.busy_until?.getTime() === flow.busy_until?.getTime()) row.busy_until = null;
    },
    markCodeSent: async (flow: Verification, now: Date) => {
      const row = this.row(flow.id);
      if (row.generation !== flow.generation || row.code_seq !== flow.code_seq) return false;
      Object.assign(row, { busy_until: null, code_sent_at: now, updated_at: now });
      return true;
    },
    generationOf: async (id: string) => this.tables.verifications.find((v) => v.id === id)?.generation,
    endLease: async (_tx: Tx, flow: Verification, review: 'APPROVED' | 'REJECTED' | null, now: Date) => {
      const row = this.row(flow.id);
      if (row.generation !== flow.generation) return undefined;
      Object.assign(row, { busy_until: null, auth_status: review ?? row.auth_status, updated_at: now });
      return structuredClone(row);
    },
  };

  limits = {
    lockMobileAndCount: async (_tx: Tx, key: FlowKey, now: Date): Promise<{ owner: Owner | undefined; counts: LimitCounts }> => {
      const since = (ms: number) => (row: { at: Date }) => row.at.getTime() > now.getTime() - ms;
      const { smsSends, reviews } = this.tables;
      const count = <T extends { at: Date }>(rows: T[], match: (row: T) => boolean, ms: number) =>
        rows.filter(match).filter(since(ms)).length;
      return {
        owner: this.ownerOf(key),
        counts: {
          smsMobileHour: count(smsSends, (s) => s.mobileHash === key.mobileHash, HOUR),
          smsMobileDay: count(smsSends, (s) => s.mobileHash === key.mobileHash, DAY),
          smsCardHour: count(smsSends, (s) => s.cardHash === key.cardHash, HOUR),
          reviewsCardDay: count(reviews, (r) => r.cardHash === key.cardHash, DAY),
          reviewsIdDay: count(reviews, (r) => r.idHash === key.idHash, DAY),
          reviewsMobileDay: count(reviews, (r) => r.mobileHash === key.mobileHash, DAY),
        },
      };
    },
  };

  bindings = {
    ownerOf: async (key: FlowKey) => this.ownerOf(key),
    countProbes: async (_tx: Tx, key: FlowKey, tried: boolean, now: Date) => {
      const { probes } = this.tables;
      if (tried) {
        const known = probes.find((p) => p.cardHash === key.cardHash && p.idHash === key.idHash);
        if (known) known.at = now;
        else probes.push({ cardHash: key.cardHash, idHash: key.idHash, at: now });
      }
      return probes.filter((p) => p.cardHash === key.cardHash && p.at.getTime() > now.getTime() - DAY).length;
    },
    bind: async (_tx: Tx, binding: NewBinding, now: Date) => {
      let card = this.tables.cards.find((c) => c.cardHash === binding.cardHash);
      if (!card) {
        card = {
          id: `card_${String(this.nextId++).padStart(16, '0')}`,
          cardHash: binding.cardHash,
          personIdHash: binding.idHash,
          masked: binding.masked,
          bank: binding.bank,
          cardType: binding.cardType,
          agreementNo: binding.agreementNo,
        };
        this.tables.cards.push(card);
      }
      if (card.personIdHash !== binding.idHash) return { cardId: card.id, samePerson: false };
      if (!this.tables.persons.includes(binding.idHash)) this.tables.persons.push(binding.idHash);
      const cardId = card.id;
      if (!this.tables.bindings.some((b) => b.channel === binding.channel && b.userId === binding.userId && b.cardId === cardId)) {
        this.tables.bindings.push({ channel: binding.channel, userId: binding.userId, cardId, at: now });
      }
      return { cardId, samePerson: true };
    },
    listForUser: async (channel: string, userId: string): Promise<BoundCard[]> =>
      this.tables.bindings
        .filter((b) => b.channel === channel && b.userId === userId)
        .reverse()
        .map((b) => this.boundCard(b.cardId)),
    findForUser: async (channel: string, userId: string, ref: CardRef): Promise<BoundCard | undefined> => {
      const card = this.tables.cards.find((c) =>
        'cardId' in ref ? c.id === ref.cardId && (c.masked === ref.number || c.cardHash === ref.cardHash) : c.cardHash === ref.cardHash,
      );
      const bound = card && this.tables.bindings.some((b) => b.channel === channel && b.userId === userId && b.cardId === card.id);
      return bound ? this.boundCard(card.id) : undefined;
    },
  };

  private boundCard(cardId: string): BoundCard {
    const card = this.tables.cards.find((c) => c.id === cardId)!;
    return { id: card.id, masked: card.masked, open_bank: card.bank, bank_card_type: card.cardType };
  }

  audit = {
    appendDurably: async (event: AuditEvent) => {
      this.tables.audit.push(event);
    },
  };
}
