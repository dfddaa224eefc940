// Distinct, valid borrowers for the benchmark: card (ICBC debit BIN), ID (valid check character), mobile.
const W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

export function idNumberOf(n: number): string {
  const day = new Date(Date.UTC(1950, 0, 1) + (n % 20000) * 86_400_000);
  const ymd = day.toISOString().slice(0, 10).replaceAll('-', '');
  const base = `110108${ymd}${String(Math.floor(n / 20000) % 1000).padStart(3, '0')}`;
  const s = [...base].reduce((acc, d, i) => acc + Number(d) * W[i], 0);
  return base + '10X98765432'[s % 11];
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

export function identity(n: number): Identity {
  return {
    user_id: `bench-${n}`,
    bank_card: `622202${String(n).padStart(9, '0')}1234`,
    open_bank: 'ICBC',
    user_name: '测试',
    id_number: idNumberOf(n),
    user_mobile: `13${String(n).padStart(9, '0')}`,
    bank_card_type: 0,
    bind_card_src: 1,
  };
}
