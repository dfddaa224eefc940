// The seed's examples (JSON fixed) and valid ID numbers, for unit and integration tests alike.

/** The seed's new-card example, JSON fixed, as the first call (no code). */
export function seedNewCard(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user_id: '246964109149933',
    bank_card: '6222022005001212723',
    open_bank: 'ICBC',
    user_name: '张三',
    id_number: '110108198802019650',
    user_mobile: '13420504517',
    bank_address: '北京市 市辖区',
    bank_card_type: 0,
    bind_card_src: 1,
    ...overrides,
  };
}

export const seedExistingCard = { user_id: '246964109149933', bank_card: '6222022005001212723', open_bank: 'ICBC', bind_card_src: 2 };

/** The 17 digits with their check character (ISO 7064 MOD 11-2). */
export function withCheckChar(digits: string): string {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...digits].reduce((acc, digit, i) => acc + Number(digit) * weights[i], 0);
  return digits + '10X98765432'[sum % 11];
}

/** The digits with their Luhn check digit (the bank's, not ours: card rules check the BIN table and the length). */
export function withLuhnDigit(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits + String((10 - (sum % 10)) % 10);
}

/** A valid 18-digit resident ID for a serial number, so tests can make distinct people. */
export function idNumber(serial: number): string {
  return withCheckChar(`11010819880201${String(serial).padStart(3, '0')}`);
}
