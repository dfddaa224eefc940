import binTable from './bins.json' with { type: 'json' };
import { RequestError, type SubCode } from './outcomes.ts';

interface BinRow {
  bin: string;
  bank: string;
  type: number;
  length: number;
}
const rows = binTable.rows as BinRow[];
const byPrefix = new Map<string, BinRow[]>();
for (const r of rows) byPrefix.set(r.bin, [...(byPrefix.get(r.bin) ?? []), r]);
const binLengths = [...new Set(rows.map((r) => r.bin.length))].sort((a, b) => b - a);

/** Banks we can bind: those of the BIN table. */
export const SUPPORTED_BANKS = new Set<string>(binTable.banks);

/** Longest BIN prefix of the table that matches the card and its length; undefined when the table does not know it. */
export function lookupBin(card: string): BinRow | undefined {
  for (const n of binLengths) {
    const hit = byPrefix.get(card.slice(0, n))?.find((r) => r.length === card.length);
    if (hit) return hit;
  }
  return undefined;
}

/** ISO 7064 MOD 11-2, the check character of the 18-digit resident ID. */
export function idCheckCharOk(id: string): boolean {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += weights[i] * Number(id[i]);
  return '10X98765432'[sum % 11] === id[17];
}

export function maskCard(card: string): string {
  return card.slice(0, 6) + '*'.repeat(card.length - 10) + card.slice(-4);
}

export interface NewCardInput {
  bank_card: string;
  open_bank: string;
  user_name?: string;
  id_number?: string;
  user_mobile?: string;
  bank_card_type?: number | null;
}

export interface NewCard {
  card: string;
  bank: string;
  name: string;
  idNumber: string;
  mobile: string;
  cardType: number;
}

/**
 * Province-level regions of GB/T 2260 (11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71) and the residence permits of Hong
 * Kong, Macao and Taiwan residents (81–83). Foreigners' permanent residence cards issued since 2023 begin with 9.
 */
const ID_REGIONS = /^(1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3]|9[0-9])/;

/** Why an 18-character ID number (check character already right) cannot be real; undefined when it can. */
export function idNumberProblem(id: string, today: Date): string | undefined {
  if (!ID_REGIONS.test(id)) return '身份证号地区码不存在 / the ID number names no region';
  const [year, month, day] = [id.slice(6, 10), id.slice(10, 12), id.slice(12, 14)].map(Number);
  const born = new Date(Date.UTC(year, month - 1, day));
  const real = born.getUTCFullYear() === year && born.getUTCMonth() === month - 1 && born.getUTCDate() === day;
  if (!real || year < 1900 || born.getTime() > today.getTime())
    return "身份证号出生日期不正确 / the ID number's birth date is not a real past date";
  return undefined;
}

/** Structure of a new card's request; the schema has already checked each field's form. Throws RequestError. */
export function normalizeNewCard(input: NewCardInput, today: Date): NewCard {
  for (const field of ['user_name', 'id_number', 'user_mobile'] as const) {
    if (!input[field]?.trim())
      throw new RequestError(`body.${field}`, 'required', `新绑卡须提供 ${field} / ${field} is required when bind_card_src=1`);
  }
  if (!/^[0-9]{12,19}$/.test(input.bank_card)) {
    throw new RequestError(
      'body.bank_card',
      'pattern',
      '新绑卡须提供完整卡号（12–19 位数字）/ a new card needs the full number, 12-19 digits',
    );
  }
  const idNumber = input.id_number!.toUpperCase();
  if (!idCheckCharOk(idNumber))
    throw new RequestError('body.id_number', 'checksum', "身份证号校验位不正确 / the ID number's check character is wrong");
  const problem = idNumberProblem(idNumber, today);
  if (problem) throw new RequestError('body.id_number', 'id-number', problem);
  const bin = lookupBin(input.bank_card);
  return {
    card: input.bank_card,
    bank: input.open_bank.toUpperCase(),
    name: input.user_name!.trim(),
    idNumber,
    mobile: input.user_mobile!,
    // The seed leaves the type optional: fall back on the BIN table, then debit.
    cardType: input.bank_card_type ?? bin?.type ?? 0,
  };
}

/** Card review that needs no outside call: bank list, BIN against bank and type, the channel's allowed types. */
export function reviewCard(card: NewCard, allowedTypes: number[], typeGiven: boolean): SubCode | undefined {
  if (!SUPPORTED_BANKS.has(card.bank)) return 'BANK_NOT_SUPPORTED';
  const bin = lookupBin(card.card);
  if (bin && bin.bank !== card.bank) return 'BIN_BANK_MISMATCH';
  if (bin && typeGiven && bin.type !== card.cardType) return 'CARD_TYPE_MISMATCH';
  if (!allowedTypes.includes(card.cardType)) return 'CARD_TYPE_NOT_ALLOWED';
  return undefined;
}
