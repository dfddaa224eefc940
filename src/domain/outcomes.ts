// The business outcomes of the seed (HTTP 200, result in the body) and the messages partners show.

export type SubCode =
  | 'BIN_BANK_MISMATCH'
  | 'CARD_TYPE_MISMATCH'
  | 'CARD_TYPE_NOT_ALLOWED'
  | 'BANK_NOT_SUPPORTED'
  | 'AUTH_REJECTED'
  | 'CARD_BOUND_TO_OTHER'
  | 'CARD_NOT_OWNED'
  | 'CARD_UNBOUND'
  | 'SMS_RATE_LIMITED'
  | 'AUTH_RATE_LIMITED'
  | 'PROVIDER_TIMEOUT'
  | 'PROVIDER_ERROR'
  | 'CODE_INCORRECT'
  | 'CODE_EXPIRED'
  | 'CODE_ATTEMPTS_EXCEEDED'
  | 'CODE_NOT_ISSUED';

const RESULT: Record<SubCode, { code: 501 | 502 | 505 | 801; message: string }> = {
  BIN_BANK_MISMATCH: { code: 501, message: '该卡未通过审核：卡号与开户行不符' },
  CARD_TYPE_MISMATCH: { code: 501, message: '该卡未通过审核：卡号与卡类型不符' },
  CARD_TYPE_NOT_ALLOWED: { code: 501, message: '该卡未通过审核：不支持该卡类型' },
  BANK_NOT_SUPPORTED: { code: 501, message: '该卡未通过审核：不支持该银行' },
  AUTH_REJECTED: { code: 501, message: '该卡未通过审核：银行卡信息验证未通过' },
  CARD_BOUND_TO_OTHER: { code: 502, message: '该卡已被绑定' },
  CARD_NOT_OWNED: { code: 505, message: '绑卡失败：该卡不在用户的银行卡列表中' },
  CARD_UNBOUND: { code: 505, message: '绑卡失败：该卡已解绑，请重新获取验证码' },
  SMS_RATE_LIMITED: { code: 505, message: '绑卡失败：验证码发送过于频繁，请稍后再试' },
  AUTH_RATE_LIMITED: { code: 505, message: '绑卡失败：银行卡验证过于频繁，请明天再试' },
  PROVIDER_TIMEOUT: { code: 505, message: '绑卡失败：银行通道超时，请重试' },
  PROVIDER_ERROR: { code: 505, message: '绑卡失败：银行通道异常，请重试' },
  CODE_INCORRECT: { code: 801, message: '验证码不正确' },
  CODE_EXPIRED: { code: 801, message: '验证码已过期，请重新获取' },
  CODE_ATTEMPTS_EXCEEDED: { code: 801, message: '验证码错误次数过多，请重新获取' },
  CODE_NOT_ISSUED: { code: 801, message: '请先获取验证码' },
};

export type Outcome =
  | { code: 200; message: 'success'; data: { status: 'BOUND'; card_id: string } }
  | { code: 200; message: 'success'; data: { status: 'SMS_SENT'; code_ttl_seconds: number; resend_after_seconds: number } }
  | { code: 501 | 502 | 505 | 801; message: string; data: { sub_code: SubCode } };

export function failure(sub: SubCode): Outcome {
  const result = RESULT[sub];
  return { code: result.code, message: result.message, data: { sub_code: sub } };
}

export function bound(cardId: string): Outcome {
  return { code: 200, message: 'success', data: { status: 'BOUND', card_id: cardId } };
}

export function smsSent(ttl: number, resend: number): Outcome {
  return { code: 200, message: 'success', data: { status: 'SMS_SENT', code_ttl_seconds: ttl, resend_after_seconds: resend } };
}

/** A request the schema let through but a rule of ours refuses: a 400 naming the field. */
export class RequestError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}
