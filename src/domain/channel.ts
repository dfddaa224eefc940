// A partner channel: who may call, which card types it may bind, and the secrets its requests are signed with.

/** A channel code (also our client id at a gateway): upper-case letters, digits and _, 2 to 32 of them. */
export const CHANNEL_CODE = /^[A-Z0-9_]{2,32}$/;

export interface Channel {
  code: string;
  cardTypes: number[];
  /** active signing secrets, newest first */
  secrets: string[];
}

/** The sandbox channel: on only while the sandbox is, with a published secret. */
export const DEMO: Channel = { code: 'DEMO', cardTypes: [0, 1], secrets: ['demo-secret'] };
