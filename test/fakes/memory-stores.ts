import type {
  AuditEvent,
  BindingStores,
  BoundCard,
  CardFacts,
  CardRef,
  FlowKey,
  LifecycleEvent,
  NewBinding,
  Owner,
  LimitCounts,
  Tx,
  Unbinding,
  UnbindOpening,
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
  agreementNo: string | null;
  /** another person took the card after its last binding went: this row is history */
  released: boolean;
}
interface Tables {
  verifications: Verification[];
  smsSends: { mobileHash: string; cardHash: string; at: Date }[];
  reviews: { cardHash: string; idHash: string; mobileHash: string; at: Date }[];
  probes: { cardHash: string; idHash: string; at: Date }[];
  cards: Card[];
  persons: string[];
  bindings: { channel: string; userId: string; cardId: string; at: Date; notifyUrl: string | null }[];
  unbindings: Unbinding[];
  failures: { channel: string; userId: string; cardHash: string; subCode: string; at: Date }[];
  /** the outbox: each event once, with where it goes */
  events: (LifecycleEvent & { id: string; url: string })[];
  audit: AuditEvent[];
}

/**
 * The binding flows' stores in memory, behaving as the PostgreSQL ones do where the flows can tell: transactions run
 * one at a time (every lock the real stores take is then held), and a transaction whose work throws leaves no trace.
 */
export class MemoryStores implements BindingStores {
  tables: Tables = {
    verifications: [],
    smsSends: [],
    reviews: [],
    probes: [],
    cards: [],
    persons: [],
    bindings: [],
    unbindings: [],
    failures: [],
    events: [],
    audit: [],
  };
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
    const card = this.held(key.cardHash);
    if (!card || !this.tables.bindings.some((b) => b.cardId === card.id)) return undefined;
    const mine = this.tables.bindings.some((b) => b.channel === key.channel && b.userId === key.userId && b.cardId === card.id);
    return { cardId: card.id, samePerson: card.personIdHash === key.idHash, mine };
  }

  /** The row of a card number held now (others are released history). */
  private held(cardHash: string): Card | undefined {
    return this.tables.cards.find((c) => c.cardHash === cardHash && !c.released);
  }

  /** Of the rows of a card number, the one this (channel, user) has or had, else the one held now. */
  private preferred(channel: string, userId: string, ref: { cardId: string } | { cardHash: string }): Card | undefined {
    const rows = this.tables.cards.filter((c) => ('cardId' in ref ? c.id === ref.cardId : c.cardHash === ref.cardHash));
    const had = (c: Card) =>
      this.tables.bindings.some((b) => b.cardId === c.id && b.channel === channel && b.userId === userId) ||
      this.tables.unbindings.some((u) => u.card_id === c.id && u.channel === channel && u.user_id === userId);
    return rows.find(had) ?? rows.find((c) => !c.released);
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
          code_enc: null,
          code_expires_at: null,
          code_sent_at: null,
          code_attempts: 0,
          code_tried: [],
          code_verified_at: null,
          bound_card_id: null,
          busy_until: null,
          notify_url: null,
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
      Object.assign(row, { busy_until: null, code_sent_at: now, code_enc: null, updated_at: now });
      return true;
    },
    rememberNotifyUrl: async (_tx: Tx, key: FlowKey, url: string) => {
      const flow = this.tables.verifications.find(
        (v) => v.channel === key.channel && v.user_id === key.userId && v.card_hash === key.cardHash,
      );
      if (flow) flow.notify_url = url;
    },
    notifyUrlOf: async (_tx: Tx, key: FlowKey) =>
      this.tables.verifications.find((v) => v.channel === key.channel && v.user_id === key.userId && v.card_hash === key.cardHash)
        ?.notify_url ?? null,
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
      let card = this.held(binding.cardHash);
      if (card && card.personIdHash !== binding.idHash && !this.tables.bindings.some((b) => b.cardId === card!.id)) {
        card.released = true; // nobody holds it any more: the new holder gets a row of their own
        card = undefined;
      }
      // an agreement ended, or whose ending may have happened, gives way to this signing's
      const inDoubt = (c: Card) =>
        this.tables.unbindings.some((u) => u.card_id === c.id && u.unbound_at === null && u.agreement_no === c.agreementNo);
      if (card && (card.agreementNo === null || inDoubt(card))) card.agreementNo = binding.agreementNo;
      if (!card) {
        card = {
          id: `card_${String(this.nextId++).padStart(16, '0')}`,
          cardHash: binding.cardHash,
          personIdHash: binding.idHash,
          masked: binding.masked,
          bank: binding.bank,
          cardType: binding.cardType,
          agreementNo: binding.agreementNo,
          released: false,
        };
        this.tables.cards.push(card);
      }
      if (card.personIdHash !== binding.idHash) return { cardId: card.id, samePerson: false };
      if (!this.tables.persons.includes(binding.idHash)) this.tables.persons.push(binding.idHash);
      const cardId = card.id;
      if (!this.tables.bindings.some((b) => b.channel === binding.channel && b.userId === binding.userId && b.cardId === cardId)) {
        this.tables.bindings.push({ channel: binding.channel, userId: binding.userId, cardId, at: now, notifyUrl: binding.notifyUrl });
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
    agreementFor: async (_tx: Tx, key: FlowKey, now: Date) => {
      const card = this.held(key.cardHash);
      if (!card || card.personIdHash !== key.idHash || card.agreementNo === null) return { state: 'none' as const };
      const ending = this.tables.unbindings.filter(
        (u) => u.card_id === card.id && u.unbound_at === null && u.agreement_no === card.agreementNo,
      );
      if (ending.some((u) => u.busy_until !== null && u.busy_until > now)) return { state: 'unsigning' as const };
      if (ending.length > 0) return { state: 'none' as const };
      return { state: 'live' as const, agreementNo: card.agreementNo };
    },
    recordFailure: async (_tx: Tx, at: { channel: string; userId: string; cardHash: string }, subCode: string, now: Date) => {
      const same = (f: { channel: string; userId: string; cardHash: string }) =>
        f.channel === at.channel && f.userId === at.userId && f.cardHash === at.cardHash;
      this.tables.failures = this.tables.failures.filter((f) => !same(f));
      this.tables.failures.push({ ...at, subCode, at: now });
    },
    factsOf: async (channel: string, userId: string, ref: { cardId: string } | { cardHash: string }): Promise<CardFacts> => {
      const card = this.preferred(channel, userId, ref);
      const cardHash = 'cardHash' in ref ? ref.cardHash : card?.cardHash;
      if (!cardHash) return {};
      const binding = card && this.tables.bindings.find((b) => b.channel === channel && b.userId === userId && b.cardId === card.id);
      const unbinding = card && this.tables.unbindings.find((u) => u.channel === channel && u.user_id === userId && u.card_id === card.id);
      const flow = this.tables.verifications.find((v) => v.channel === channel && v.user_id === userId && v.card_hash === cardHash);
      const failure = this.tables.failures.find((f) => f.channel === channel && f.userId === userId && f.cardHash === cardHash);
      const hadCard = Boolean(binding || unbinding || (card && flow?.bound_card_id === card.id));
      if ('cardId' in ref && !hadCard) return {};
      return {
        ...(card && hadCard ? { card: this.boundCard(card.id) } : {}),
        ...(binding ? { boundAt: binding.at } : {}),
        ...(unbinding ? { unbinding: structuredClone(unbinding) } : {}),
        ...(flow ? { flow: structuredClone(flow) } : {}),
        ...(failure ? { failure: { subCode: failure.subCode, at: failure.at } } : {}),
      };
    },
  };

  unbindings = {
    cardIdOf: async (channel: string, userId: string, ref: { cardId: string } | { cardHash: string }) =>
      this.preferred(channel, userId, ref)?.id,
    open: async (_tx: Tx, channel: string, userId: string, cardId: string, now: Date, leaseUntil: Date): Promise<UnbindOpening> => {
      const binding = this.tables.bindings.find((b) => b.channel === channel && b.userId === userId && b.cardId === cardId);
      let row = this.tables.unbindings.find((u) => u.channel === channel && u.user_id === userId && u.card_id === cardId);
      if (!binding) {
        return row?.unbound_at ? { state: 'unbound', unbinding: structuredClone(row), card: this.boundCard(cardId) } : { state: 'none' };
      }
      if (!row) {
        row = {
          id: String(this.nextId++),
          channel,
          user_id: userId,
          card_id: cardId,
          cycle: 1,
          agreement_no: null,
          busy_until: null,
          unbound_at: null,
        };
        this.tables.unbindings.push(row);
      }
      if (row.busy_until && row.busy_until > now && !row.unbound_at) return { state: 'busy' };
      const card = this.tables.cards.find((c) => c.id === cardId)!;
      const others = this.tables.bindings.some((b) => b.cardId === cardId && b !== binding);
      const unfinished = !row.unbound_at && row.agreement_no !== null ? row.agreement_no : null;
      Object.assign(row, {
        cycle: row.unbound_at ? row.cycle + 1 : row.cycle,
        agreement_no: unfinished ?? (!others ? card.agreementNo : null),
        busy_until: leaseUntil,
        unbound_at: null,
      });
      return { state: 'open', unbinding: structuredClone(row), card: this.boundCard(cardId) };
    },
    finish: async (_tx: Tx, unbinding: Unbinding, now: Date) => {
      const row = this.tables.unbindings.find((u) => u.id === unbinding.id);
      if (!row || row.unbound_at || row.busy_until?.getTime() !== unbinding.busy_until?.getTime()) return undefined;
      const card = this.tables.cards.find((c) => c.id === row.card_id)!;
      const others = this.tables.bindings.some((b) => b.cardId === row.card_id && !(b.channel === row.channel && b.userId === row.user_id));
      if (!others && card.agreementNo !== null && unbinding.agreement_no === null) {
        row.busy_until = null;
        return 'again' as const;
      }
      Object.assign(row, { busy_until: null, unbound_at: now });
      const binding = this.tables.bindings.find((b) => b.channel === row.channel && b.userId === row.user_id && b.cardId === row.card_id);
      this.tables.bindings = this.tables.bindings.filter((b) => b !== binding);
      if (unbinding.agreement_no !== null && card.agreementNo === unbinding.agreement_no) card.agreementNo = null;
      return { unbound_at: now, notifyUrl: binding?.notifyUrl ?? null };
    },
    release: async (unbinding: Unbinding) => {
      const row = this.tables.unbindings.find((u) => u.id === unbinding.id);
      if (row && row.busy_until?.getTime() === unbinding.busy_until?.getTime()) row.busy_until = null;
    },
  };

  events = {
    emit: async (_tx: Tx, event: LifecycleEvent, url: string | null) => {
      if (url !== null && !this.tables.events.some((e) => e.key === event.key)) {
        this.tables.events.push({ ...structuredClone(event), id: `evt_${String(this.nextId++).padStart(20, '0')}`, url });
      }
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
