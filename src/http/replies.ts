import type { Outcome } from '../domain/outcomes.ts';

// Every answer has one body shape, {code, message, data?}, built here. Protocol errors carry HTTP status = code;
// business outcomes (the seed's codes 200/501/502/505/801) are HTTP 200 with the result in the body.

export interface Reply {
  status: number;
  body: { code: number; message: string; data?: unknown } | Record<string, unknown>;
  headers?: Record<string, string>;
  /** the exact bytes to send, when they were kept (a replayed answer); otherwise the body is serialized */
  text?: string;
}

/** The bytes a reply is sent as. */
export function serialize(reply: Reply): string {
  return reply.text ?? JSON.stringify(reply.body);
}

/** A stored answer, sent again as the very same bytes. */
export function replayOf(stored: { status: number; text: string }): Reply {
  return { status: stored.status, body: JSON.parse(stored.text) as Reply['body'], text: stored.text };
}

/** Sub_codes whose answer says "retry": a same-nonce retry is processed afresh rather than answered from the store. */
const TRANSIENT_SUB_CODES = new Set(['PROVIDER_TIMEOUT', 'PROVIDER_ERROR']);

/** 500, 429, and 505 PROVIDER_TIMEOUT or PROVIDER_ERROR: answers that say "try again" and are not kept under the nonce. */
export function isTransient(reply: Reply): boolean {
  if (reply.status === 500 || reply.status === 429) return true;
  const body = reply.body as { code?: number; data?: { sub_code?: string } };
  return body.code === 505 && TRANSIENT_SUB_CODES.has(body.data?.sub_code ?? '');
}

const MESSAGES: Record<number, string> = {
  400: '请求参数不合法',
  401: '签名校验失败',
  404: '接口或渠道不存在',
  405: '请求方法不允许',
  408: '请求超时',
  413: '请求体过大（上限 64 KiB）',
  415: '请求体须为 application/json',
  429: '请求过于频繁，请稍后重试',
  431: '请求头过大',
  500: '系统内部错误',
  503: '服务繁忙，请稍后重试',
};

export interface FieldError {
  field: string;
  rule: string;
  message: string;
}

/** A successful operation's data. */
export function success(data: unknown): Reply {
  return { status: 200, body: { code: 200, message: 'success', data } };
}

/** A business outcome of bindCard: success or the seed's failure codes, all HTTP 200. */
export function outcome(result: Outcome): Reply {
  return { status: 200, body: result };
}

export function protocolError(status: number, message = MESSAGES[status], errors?: FieldError[]): Reply {
  return { status, body: errors ? { code: status, message, data: { errors } } : { code: status, message } };
}

/** 429 and 503 say when to come back. */
export function retryLater(status: 429 | 503): Reply {
  return { ...protocolError(status), headers: { 'Retry-After': '1' } };
}

const RULES: Record<string, string> = {
  required: '缺失',
  pattern: '格式不正确',
  type: '类型不正确',
  enum: '取值不在允许范围内',
  additionalProperties: '是不允许的字段',
  maxLength: '过长',
  minLength: '过短',
  minimum: '过小',
  maximum: '过大',
  format: '格式不正确',
  checksum: '校验位不正确',
};

export function badRequest(errors: FieldError[]): Reply {
  const first = errors[0];
  return protocolError(400, `请求参数不合法：${first.field} ${RULES[first.rule] ?? first.message}`, errors);
}

export function statusText(status: number): string {
  return MESSAGES[status] ?? MESSAGES[500];
}
