// Distinct, valid borrowers for the benchmark: card (ICBC debit BIN), ID (valid check character), mobile.
import { withCheckChar } from '../setup/seed.ts';

export function idNumberOf(index: number): string {
  const day = new Date(Date.UTC(1950, 0, 1) + (index % 20000) * 86_400_000);
  const ymd = day.toISOString().slice(0, 10).replaceAll('-', '');
  return withCheckChar(`110108${ymd}${String(Math.floor(index / 20000) % 1000).padStart(3, '0')}`);
}

export interface Identity {
  user_id: string;
  bank_card: string;
  open_bank: string;
  user_name: string;
  id_number: string;
  user_mobile: string;
  bank_card_type: number;
  bind_card_src: 1;
}

export function identity(index: number): Identity {
  return {
    user_id: `bench-${index}`,
    bank_card: `622202${String(index).padStart(9, '0')}1234`,
    open_bank: 'ICBC',
    user_name: '测试',
    id_number: idNumberOf(index),
    user_mobile: `13${String(index).padStart(9, '0')}`,
    bank_card_type: 0,
    bind_card_src: 1,
  };
}

// Users no request has named yet, for new-card flows, far above the seeded and bulk-loaded ones; every taker in a
// run (the recording, each load process) gets numbers of its own, so no flow meets a card another already bound.
let nextFresh = 100_000_000;

/** The first of `count` fresh user numbers, reserved for the caller. */
export function takeFreshUsers(count: number): number {
  const first = nextFresh;
  nextFresh += count;
  return first;
}
