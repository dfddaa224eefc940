// The cast of one sequence: a handful of users (three people, one of them with two user ids) sharing three cards and
// two mobiles. Every sequence gets numbers of its own, so nothing a sequence (or a shrinking attempt) did is seen by the
// next one: a clean state without truncating the database between runs.
import { randomInt } from 'node:crypto';
import { idNumberOf } from '../../bench/identities.ts';
import { withLuhnDigit } from '../../setup/seed.ts';

/** What the sandbox's bank does with a card, by its last four digits (docs/partners.md#sandbox). */
export type CardBehaviour = 'plain' | 'unsign-fails-once' | 'rejected';

export interface WorldCard {
  number: string;
  masked: string;
  behaviour: CardBehaviour;
}

export interface WorldUser {
  id: string;
  person: number;
  /** index into mobiles: the mobile this user's requests give unless they name the other one */
  mobile: number;
}

export interface WorldPerson {
  name: string;
  idNumber: string;
}

export interface World {
  users: WorldUser[];
  persons: WorldPerson[];
  cards: WorldCard[];
  mobiles: string[];
}

/** The people: user u1 and u2 are one person under two user ids (they share one agreement), u3 and u4 are others. */
export const USERS: Omit<WorldUser, 'id'>[] = [
  { person: 0, mobile: 0 },
  { person: 0, mobile: 1 },
  { person: 1, mobile: 1 },
  { person: 2, mobile: 0 },
];
const NAMES = ['张三', '李四', '王五'];
const LAST4: Record<CardBehaviour, () => string> = {
  plain: () => `7${randomInt(0, 1000).toString().padStart(3, '0')}`,
  'unsign-fails-once': () => '0003',
  rejected: () => '0501',
};
export const CARD_BEHAVIOURS: CardBehaviour[] = ['plain', 'unsign-fails-once', 'rejected'];

function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(randomInt(0, 10));
  return s;
}

/** An ICBC debit number (BIN 622202, 19 digits) ending in `last4`, made Luhn-valid by the digit before them. */
function icbcDebitCard(last4: string): string {
  const head = `622202${digits(8)}`;
  for (let fix = 0; fix < 10; fix++) {
    const card = `${head}${fix}${last4}`;
    if (luhnOk(card)) return card;
  }
  throw new Error('unreachable: one digit always makes a Luhn sum');
}

function luhnOk(card: string): boolean {
  return withLuhnDigit(card.slice(0, -1)) === card;
}

let worlds = 0;

export function makeWorld(): World {
  const world = worlds++;
  const tag = `${Date.now().toString(36)}${world.toString(36)}`;
  const cards = CARD_BEHAVIOURS.map((behaviour) => {
    const number = icbcDebitCard(LAST4[behaviour]());
    return { number, masked: `${number.slice(0, 6)}*********${number.slice(-4)}`, behaviour };
  });
  return {
    users: USERS.map((u, i) => ({ ...u, id: `mbt-${tag}-u${i + 1}` })),
    // distinct in the run's database (one per run): a person shared by two worlds would carry one world's review
    // counts into the other's, which its model does not predict
    persons: NAMES.map((name, p) => ({ name, idNumber: idNumberOf(world * NAMES.length + p) })),
    cards,
    mobiles: [`139${digits(8)}`, `138${digits(8)}`],
  };
}
