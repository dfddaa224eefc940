// The stores the domain works through: named operations on plain objects. src/store/ implements them on PostgreSQL;
// test/fakes/ implements them in memory, so the flows' rules are tested without a database.

/** A transaction, opaque to the domain: only the stores that made it look inside. */
export interface Tx {
  readonly __tx: unique symbol;
}

export interface Transactor {
  /** Runs the work in one transaction: all of its writes commit together, or none does (the work threw). */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
}

/** What identifies a new-card flow and the people in it; every value is a keyed hash, never a clear one. */
export interface FlowKey {
  channel: string;
  userId: string;
  cardHash: string;
  idHash: string;
  mobileHash: string;
  /** everything the partner sent about the card and its holder: a change starts the review over */
  detailsHash: string;
}

/** The verification row of one (channel, user, card) new-card flow: its progress between outside calls. */
export interface Verification {
  id: string;
  channel: string;
  user_id: string;
  card_hash: string;
  details_hash: string;
  id_number_hash: string;
  mobile_hash: string;
  /** raised when corrected details start the flow over; a call made for an older generation is not recorded */
  generation: number;
  auth_status: 'APPROVED' | 'REJECTED' | null;
  code_seq: number;
  code_hash: string | null;
  /** the same code, encrypted with its key id (Vault.seal): sent again while its text is not known to have gone */
  code_enc: string | null;
  code_expires_at: Date | null;
  code_sent_at: Date | null;
  code_attempts: number;
  code_tried: string[];
  code_verified_at: Date | null;
  bound_card_id: string | null;
  /** the lease: a request is calling out for this row (or an unbinding of its card) until then */
  busy_until: Date | null;
  /** the newest callback address given for the flow */
  notify_url: string | null;
  created_at: Date;
  updated_at: Date;
}

export type VerificationChanges = Partial<Omit<Verification, 'id' | 'channel' | 'user_id' | 'card_hash' | 'created_at' | 'updated_at'>>;

/** A card that is bound: whether to the person of the request, and whether to the request's (channel, user). */
export interface Owner {
  cardId: string;
  samePerson: boolean;
  mine: boolean;
}

export interface VerificationStore {
  /** Creates the flow's row or locks the one there, and reads the card's owner in the same step. */
  openForFirstCall(tx: Tx, key: FlowKey, now: Date): Promise<{ flow: Verification; owner: Owner | undefined }>;
  /** Locks the flow's row, if there is one. */
  lockForConfirmation(tx: Tx, key: FlowKey): Promise<Verification | undefined>;
  update(tx: Tx, flow: Verification, changes: VerificationChanges, now: Date): Promise<Verification>;
  /** A new code for the row, and the SMS send the limits count, written together. */
  issueCode(tx: Tx, flow: Verification, changes: VerificationChanges, now: Date): Promise<Verification>;
  /** The lease for a card review, and the review that the daily limits count, written together. */
  startReview(tx: Tx, flow: Verification, leaseUntil: Date, now: Date): Promise<Verification>;
  /** Ends the flow's lease, if it is still the one this request took: the request failed after its outside call. */
  releaseLease(flow: Verification): Promise<void>;
  /** Ends the lease of a code just sent, if that code is still the row's latest; false otherwise. */
  markCodeSent(flow: Verification, now: Date): Promise<boolean>;
  generationOf(id: string): Promise<number | undefined>;
  /** Keeps a callback address as the flow's newest, if the flow has a row. */
  rememberNotifyUrl(tx: Tx, key: FlowKey, url: string): Promise<void>;
  /** The newest callback address given for the flow, read without a lock (null: none, or no such flow). */
  notifyUrlOf(tx: Tx, key: FlowKey): Promise<string | null>;
  /**
   * Locks the row and ends the lease, if the row is still in the generation the call was made for (undefined
   * otherwise); a card review's result is recorded in the same step.
   */
  endLease(tx: Tx, flow: Verification, review: 'APPROVED' | 'REJECTED' | null, now: Date): Promise<Verification | undefined>;
}

/** What the limits count: SMS sent in the last hour and day, card reviews (gateway calls) in the last day. */
export interface LimitCounts {
  smsMobileHour: number;
  smsMobileDay: number;
  smsCardHour: number;
  reviewsCardDay: number;
  reviewsIdDay: number;
  reviewsMobileDay: number;
}

export interface LimitStore {
  /**
   * Serialises the decisions that spend a limit for the mobile until the transaction ends (so concurrent flows cannot
   * both take the last free slot), then reads the card's owner and what the limits count. It takes the card's probe
   * lock first (see countProbes), so every path takes the two in the same order.
   */
  lockMobileAndCount(tx: Tx, key: FlowKey, now: Date): Promise<{ owner: Owner | undefined; counts: LimitCounts }>;
}

/** The clear values of a new binding; the store keeps them encrypted. */
export interface NewBinding {
  channel: string;
  userId: string;
  idHash: string;
  idNumber: string;
  name: string;
  cardHash: string;
  cardNumber: string;
  mobile: string;
  masked: string;
  bank: string;
  cardType: number;
  bankAddress: string | null;
  agreementNo: string;
  /** the callback address the binding is made with (its binding.unbound goes there) */
  notifyUrl: string | null;
}

export interface BoundCard {
  id: string;
  masked: string;
  open_bank: string;
  bank_card_type: number;
}

/** How an existing-card request names its card: by the full number, or by the card list's id and the number as listed. */
export type CardRef = { cardHash: string } | { cardId: string; number: string; cardHash: string };

export interface BindingStore {
  /** The card's owner, if it is bound. */
  ownerOf(key: FlowKey, tx?: Tx): Promise<Owner | undefined>;
  /**
   * How many distinct ID numbers other than the holder's were tried against the bound card in the day before `now`,
   * counting the request's own when `tried` (it is not the holder's) and remembering it. Serialised per card until
   * the transaction ends, so concurrent requests each count the others.
   */
  countProbes(tx: Tx, key: FlowKey, tried: boolean, now: Date): Promise<number>;
  /**
   * Person, card and binding, written together. A card that exists already is kept as it is; its id and person come
   * back, and the binding is not made when that person is another one.
   */
  bind(tx: Tx, binding: NewBinding, now: Date): Promise<{ cardId: string; samePerson: boolean }>;
  listForUser(channel: string, userId: string): Promise<BoundCard[]>;
  findForUser(channel: string, userId: string, card: CardRef): Promise<BoundCard | undefined>;
  /**
   * The person's agreement for the card, as a confirmation about to sign finds it (the card's row is locked until the
   * transaction ends, so no unbinding of the card starts meanwhile): `live` (one agreement serves all of a person's
   * bindings of a card: no new signing), `unsigning` (an unbinding is ending it now: wait), or `none` (no card, no
   * agreement, or one whose ending failed or timed out and may have happened: sign anew). Only unbindings of the
   * card's current agreement count: one still ending an older agreement does not concern it.
   */
  agreementFor(tx: Tx, key: FlowKey, now: Date): Promise<{ state: 'live'; agreementNo: string } | { state: 'unsigning' | 'none' }>;
  /** Keeps a refusal as the (channel, user, card)'s last one, for queryBinding. */
  recordFailure(tx: Tx, at: { channel: string; userId: string; cardHash: string }, subCode: string, now: Date): Promise<void>;
  /** Everything known of a (channel, user)'s card, named by id or by hash; a card the user never had tells nothing. */
  factsOf(channel: string, userId: string, card: { cardId: string } | { cardHash: string }): Promise<CardFacts>;
}

/** What queryBinding reads: each part present only when there is one. */
export interface CardFacts {
  card?: BoundCard;
  boundAt?: Date;
  unbinding?: Pick<Unbinding, 'busy_until' | 'unbound_at'>;
  flow?: Verification;
  failure?: { subCode: string; at: Date };
}

/** The latest unbinding of a (channel, user, card): in progress while unbound_at is null. */
export interface Unbinding {
  id: string;
  channel: string;
  user_id: string;
  card_id: string;
  /** one more for each unbinding of the same binding's successors: part of the gateway request number */
  cycle: number;
  /** the agreement this unbinding ends at the gateway (it removes the card's last binding), else null */
  agreement_no: string | null;
  busy_until: Date | null;
  unbound_at: Date | null;
}

/** Where an unbinding request stands once its row is ours. */
export type UnbindOpening =
  | { state: 'none' }
  | { state: 'unbound'; unbinding: Unbinding; card: BoundCard }
  | { state: 'busy' }
  | { state: 'open'; unbinding: Unbinding; card: BoundCard };

export interface UnbindingStore {
  /**
   * The card's id, named by id (as given) or by the full number's hash: of the card rows with that number, the one this
   * (channel, user) has or had, else the one held now.
   */
  cardIdOf(channel: string, userId: string, card: { cardId: string } | { cardHash: string }): Promise<string | undefined>;
  /**
   * Locks this (channel, user)'s binding of the card, the card's row and the unbinding row. With a binding and no
   * other request on it: takes the lease (until `leaseUntil`) on the unbinding and names the agreement to end: the one
   * an earlier try of this unbinding set out to end (it may have ended at the gateway), else the card's, when this is
   * its last binding in any channel. A confirmation about to sign waits while it is being ended (agreementFor).
   */
  open(tx: Tx, channel: string, userId: string, cardId: string, now: Date, leaseUntil: Date): Promise<UnbindOpening>;
  /**
   * Removes the binding, marks the unbinding done and ends the leases, if the lease is still this request's (undefined
   * otherwise); the card's agreement is cleared if it is the one ended. Returns the address the binding was made with.
   * `again` (the lease released, nothing removed): the card's other bindings went meanwhile, so this one is its last
   * after all and its agreement must be ended first.
   */
  finish(tx: Tx, unbinding: Unbinding, now: Date): Promise<{ unbound_at: Date; notifyUrl: string | null } | 'again' | undefined>;
  /** Ends the lease this request took: its gateway call failed (the agreement named stays, as possibly ended). */
  release(unbinding: Unbinding): Promise<void>;
}

/** A change a partner hears of at its callback address. */
export interface LifecycleEvent {
  /** what makes the event one (eventKey): emitting it again is a no-op */
  key: string;
  type: 'binding.bound' | 'binding.failed' | 'binding.unbound';
  channel: string;
  userId: string;
  created: Date;
  data: { card_id: string | null; bank_card: string; open_bank: string; bank_card_type: number | null; sub_code?: string };
}

export interface EventStore {
  /**
   * Writes the event to the outbox, under a new random id, in the transaction of the change it tells of; an event of
   * the same key is kept as it is. No address: nowhere to send it.
   */
  emit(tx: Tx, event: LifecycleEvent, url: string | null): Promise<void>;
}

export interface AuditEvent {
  at: Date;
  channel: string;
  userId: string;
  event: string;
  cardMasked: string;
  cardId: string | null;
  resultCode: number;
  subCode: string | null;
}

export interface AuditStore {
  /**
   * The request's last write, committed durably: when it returns, the event and every commit the request made or read
   * before it are on disk, whatever the session's commit mode. Call it after everything the answer depends on.
   */
  appendDurably(event: AuditEvent): Promise<void>;
}

/** Every store the binding flows use. */
export interface BindingStores extends Transactor {
  verifications: VerificationStore;
  limits: LimitStore;
  bindings: BindingStore;
  unbindings: UnbindingStore;
  events: EventStore;
  audit: AuditStore;
}
