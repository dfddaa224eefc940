// A partner channel: who may call, which card types it may bind, and the secrets its requests are signed with.

/** A channel code (also our client id at a gateway): upper-case letters, digits and _, 2 to 32 of them. */
export const CHANNEL_CODE = /^[A-Z0-9_]{2,32}$/;

export interface Channel {
  code: string;
  cardTypes: number[];
  /** active signing secrets, newest first */
  secrets: string[];
  /** hosts a callback address (notify_url) may name */
  callbackHosts: string[];
  /** where events go when a flow names no address */
  defaultNotifyUrl: string | null;
}

/** The sandbox channel: on only while the sandbox is, with a published secret. */
export const DEMO: Channel = { code: 'DEMO', cardTypes: [0, 1], secrets: ['demo-secret'], callbackHosts: [], defaultNotifyUrl: null };

/** Loopback hosts as a URL names them. */
export const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Why a callback address cannot be one of the channel's, or undefined when it can: https to one of its registered
 * hosts (any port); the sandbox's DEMO channel may also use http or https to loopback.
 */
export function notifyUrlProblem(raw: string, channel: Pick<Channel, 'code' | 'callbackHosts'>): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '不是绝对 URL / is not an absolute URL';
  }
  if (url.username || url.password) return '不能含用户名或密码 / must not carry credentials';
  if (channel.code === DEMO.code && LOOPBACK.has(url.hostname) && (url.protocol === 'http:' || url.protocol === 'https:')) return undefined;
  if (url.protocol !== 'https:') return '须为 https / must be https';
  if (!channel.callbackHosts.includes(url.hostname))
    return `主机 ${url.hostname} 未登记为该渠道的回调主机 / host ${url.hostname} is not among the channel's callback hosts`;
  return undefined;
}
