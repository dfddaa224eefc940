// The one body shape of every answer: {code, message, data?}. Protocol errors carry HTTP status = code.

export interface Reply {
  status: number;
  body: { code: number; message: string; data?: unknown } | Record<string, unknown>;
  headers?: Record<string, string>;
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

export interface FieldError { field: string; rule: string; message: string }

export function protocolError(status: number, message = MESSAGES[status], errors?: FieldError[]): Reply {
  return { status, body: errors ? { code: status, message, data: { errors } } : { code: status, message } };
}

const RULES: Record<string, string> = {
  required: '缺失', pattern: '格式不正确', type: '类型不正确', enum: '取值不在允许范围内', additionalProperties: '是不允许的字段',
  maxLength: '过长', minLength: '过短', minimum: '过小', maximum: '过大', format: '格式不正确', checksum: '校验位不正确',
};

export function badRequest(errors: FieldError[]): Reply {
  const first = errors[0];
  return protocolError(400, `请求参数不合法：${first.field} ${RULES[first.rule] ?? first.message}`, errors);
}

export function statusText(status: number): string {
  return MESSAGES[status] ?? MESSAGES[500];
}
