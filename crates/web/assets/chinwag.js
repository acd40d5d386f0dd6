// chinwag.js: the chinwag binary protocol (docs/protocol.md), version 1, in
// the browser. No dependencies, no DOM: an ES2020 module that also runs under
// node, so that it can be checked against the document's test vectors.
//
// A frame here is always the whole frame, its 4-byte big-endian length prefix
// included, as a Uint8Array: over the WebSocket gateway each binary message
// carries exactly one such frame.
//
// Frames are plain objects whose `type` is the frame's name in the document
// and whose fields carry the document's field names:
//
//   client frames (encodeClient / decodeClient)
//     { type: 'HELLO', version: 1, nick, options?, password? }
//         nick: a string (or, to send raw bytes, a Uint8Array; decodeClient
//         gives a Uint8Array when the bytes are not UTF-8). A password
//         without options sends options = 0.
//     { type: 'SEND', id, to, text }
//     { type: 'WHO' }   { type: 'QUIT' }
//     { type: 'PING', token }   { type: 'PONG', token }
//     { type: 'ACCOUNT', action: 1 | 2 | 3, nick, password, new_password }
//     { type: 'CONFIRM', ids: [...] }
//     { type: 'CONFIRM_RECEIPTS', receipts: [{ message_id, recipient }] }
//   hub frames (decodeHub / encodeHub)
//     { type: 'WELCOME', version, max_frame, nick, roster: [nick...], options? }
//     { type: 'MESSAGE' | 'STORED_MESSAGE', id, ts_ms, from, to, text }
//     { type: 'SEQUENCED', seq, id, ts_ms, from, to, text }
//     { type: 'ACK', client_id, message_id, delivered, statuses: [{ nick, code }] }
//     { type: 'ACK_RUN', first_client_id, first_message_id, count }
//     { type: 'PRESENCE', online: boolean, ts_ms, nick }
//     { type: 'ROSTER', nicks: [...] }
//     { type: 'ERROR', code, reference, message }
//     { type: 'ACCOUNT_DONE', action, nick }
//     { type: 'MAILBOX', count, expired }
//     { type: 'USERS', users: [{ flags, last_seen_ms, nick }] }
//     { type: 'USER', flags, last_seen_ms, nick }
//     { type: 'RECEIPT', receipts: [{ message_id, received_ms, recipient }] }
//     { type: 'PING', token }   { type: 'PONG', token }
//
// `to` (the `recipients` type) is the string 'everyone' or an array of
// nicknames. u64 fields (ids, tokens, timestamps) decode to BigInt: hub
// message ids are above 2^53. The encoders accept a BigInt, a safe integer
// Number or a decimal string for them. u8/u16/u32 fields are Numbers.
//
// Errors: decoding throws a ProtocolError whose `code` is the protocol's
// error code (1 MALFORMED_FRAME, 2 FRAME_TOO_LARGE); encoding a frame that
// cannot be encoded (a nickname over 255 bytes, a bad action...) throws a
// TypeError or RangeError.
//
// The same API is on globalThis.chinwagCodec (window.chinwagCodec in a page),
// for browser tests: encodeClient(frame) -> Uint8Array and
// decodeHub(Uint8Array) -> frame, and the rest (decodeClient, encodeHub,
// fromHex, toHex, plain, FrameReader, ...).

export const PROTOCOL_VERSION = 1;

/** Limit on a frame's payload before WELCOME (section 1). */
export const UNREGISTERED_MAX_FRAME = 16384;

/** The post-registration limit by default, and the vectors' default `max`. */
export const DEFAULT_MAX_FRAME = 1048576;

export const OPCODE = Object.freeze({
  HELLO: 0x01,
  SEND: 0x02,
  WHO: 0x03,
  QUIT: 0x04,
  PING: 0x05,
  PONG: 0x06,
  ACCOUNT: 0x07,
  CONFIRM: 0x08,
  CONFIRM_RECEIPTS: 0x09,
  WELCOME: 0x81,
  MESSAGE: 0x82,
  ACK: 0x83,
  PRESENCE: 0x84,
  ROSTER: 0x85,
  ERROR: 0x86,
  ACK_RUN: 0x87,
  ACCOUNT_DONE: 0x88,
  MAILBOX: 0x89,
  STORED_MESSAGE: 0x8a,
  USERS: 0x8b,
  USER: 0x8c,
  RECEIPT: 0x8d,
  SEQUENCED: 0x8e,
});

/** HELLO's option bits (section 5.1). */
export const OPTIONS = Object.freeze({
  ACK_RUNS: 1,
  NO_PRESENCE: 2,
  QUIET: 4,
  USERS: 8,
  CONFIRMS: 16,
  RECEIPTS: 32,
  RELIABLE: 64,
});

/** A `user`'s flags (section 5.2). */
export const USER_FLAGS = Object.freeze({ ONLINE: 1, REGISTERED: 2 });

/** ACCOUNT's and ACCOUNT_DONE's actions. */
export const ACTION = Object.freeze({ CREATE: 1, SET_PASSWORD: 2, DELETE: 3 });

/** Section 7: code -> [name, fatal (true, false, or null for an ACK status), description]. */
const CODE_TABLE = {
  0: ['DELIVERED', null, 'delivered'],
  1: ['MALFORMED_FRAME', true, 'malformed frame'],
  2: ['FRAME_TOO_LARGE', true, 'frame too large'],
  3: ['UNSUPPORTED_VERSION', true, 'unsupported protocol version'],
  4: ['NOT_REGISTERED', false, 'not registered yet'],
  5: ['ALREADY_REGISTERED', false, 'already registered'],
  6: ['SERVER_FULL', true, 'server full'],
  7: ['SHUTTING_DOWN', true, 'server shutting down'],
  8: ['SLOW_CONSUMER', true, 'slow consumer'],
  9: ['BAD_REQUEST', false, 'bad request'],
  10: ['REGISTRATION_TIMEOUT', true, 'registration timeout'],
  11: ['PING_TIMEOUT', true, 'ping timeout'],
  12: ['RATE_LIMITED', false, 'rate limited'],
  13: ['FRAME_TIMEOUT', true, 'frame stalled midway'],
  14: ['FLOODING', true, 'disconnected for flooding'],
  15: ['SESSION_REPLACED', true, 'logged in from another connection'],
  20: ['NICK_EMPTY', false, 'nickname is empty'],
  21: ['NICK_TOO_LONG', false, 'nickname is too long'],
  22: ['NICK_NOT_UTF8', false, 'nickname is not valid utf-8'],
  23: ['NICK_BAD_START', false, 'nickname must start with a letter'],
  24: ['NICK_BAD_CHAR', false, 'nickname has a character other than letters, digits, _ - .'],
  25: ['NICK_RESERVED', false, 'nickname is reserved'],
  26: ['NICK_TAKEN', false, 'nickname is taken'],
  27: ['NICK_REGISTERED', false, 'nickname is registered; log in with its password'],
  30: ['NO_SUCH_USER', null, 'no such user'],
  31: ['UNABLE_TO_DELIVER', null, 'unable to deliver'],
  32: ['STORED', null, 'stored'],
  33: ['MAILBOX_FULL', null, 'mailbox full'],
  34: ['STORE_FAILED', null, 'could not store'],
  40: ['BAD_PASSWORD', false, 'wrong password'],
  41: ['LOGIN_THROTTLED', false, 'too many wrong passwords; wait a minute'],
  42: ['NO_SUCH_ACCOUNT', false, 'no such account'],
  43: ['ACCOUNT_EXISTS', false, 'account exists'],
  44: ['REGISTRATION_CLOSED', false, 'registration is closed'],
  45: ['ACCOUNT_REQUIRED', false, 'an account is required'],
  46: ['ACCOUNTS_UNAVAILABLE', false, 'this hub keeps no accounts'],
};

/** Every code by name: CODE.NICK_TAKEN === 26. */
export const CODE = Object.freeze(
  Object.fromEntries(Object.entries(CODE_TABLE).map(([code, [name]]) => [name, Number(code)])),
);

/** The code's name from section 7 (`NO_SUCH_USER`), or `CODE_<n>` for one not listed. */
export function codeName(code) {
  const entry = CODE_TABLE[code];
  return entry ? entry[0] : `CODE_${code}`;
}

/** The code's standard description from section 7, or undefined. */
export function codeDescription(code) {
  const entry = CODE_TABLE[code];
  return entry ? entry[2] : undefined;
}

/** True for a fatal ERROR code, false for one that is not, undefined if unknown. */
export function codeIsFatal(code) {
  const entry = CODE_TABLE[code];
  return entry && entry[1] !== null ? entry[1] : undefined;
}

/** A frame that cannot be decoded; `code` is the protocol's code for it (1 or 2). */
export class ProtocolError extends Error {
  constructor(code, reason) {
    super(reason);
    this.name = 'ProtocolError';
    this.code = code;
    this.reason = reason;
  }
}

function malformed(reason) {
  return new ProtocolError(1, reason);
}

const U64_MAX = (1n << 64n) - 1n;
const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF
// is part of the text, not a byte-order mark to drop.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------- reading

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  remaining() {
    return this.bytes.length - this.pos;
  }

  need(n, what) {
    if (n > this.remaining()) throw malformed(what);
  }

  u8(what) {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  u16(what) {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, false);
    this.pos += 2;
    return v;
  }

  u32(what) {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }

  u64(what) {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }

  take(n, what) {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  nickRaw() {
    const n = this.u8('truncated nickname length');
    return this.take(n, 'truncated nickname');
  }

  nick() {
    return utf8(this.nickRaw(), 'nickname is not valid utf-8');
  }

  text() {
    const n = this.u32('truncated text length');
    return utf8(this.take(n, 'truncated text'), 'text is not valid utf-8');
  }

  /** A u32 count, refused if `count` entries of `minEach` bytes cannot fit in what is left. */
  count(minEach, what) {
    const count = this.u32(`truncated ${what} count`);
    if (count > Math.floor(this.remaining() / minEach)) {
      throw malformed(`${what} count exceeds the frame`);
    }
    return count;
  }

  nicks() {
    const count = this.count(1, 'nicks');
    const out = [];
    for (let i = 0; i < count; i++) out.push(this.nick());
    return out;
  }

  recipients() {
    const kind = this.u8('truncated recipients kind');
    if (kind === 0x00) return this.nicks();
    if (kind === 0x01) return 'everyone';
    throw malformed('unknown recipients kind');
  }

  user() {
    const flags = this.u8('truncated user flags');
    if ((flags & ~3) !== 0) throw malformed('unknown user flags');
    const last_seen_ms = this.u64('truncated last seen');
    return { flags, last_seen_ms, nick: this.nick() };
  }

  action() {
    const action = this.u8('truncated account action');
    if (action < 1 || action > 3) throw malformed('unknown account action');
    return action;
  }

  finish() {
    if (this.remaining() !== 0) throw malformed('trailing bytes after the last field');
  }
}

function utf8(bytes, what) {
  try {
    return utf8Decoder.decode(bytes);
  } catch (_) {
    throw malformed(what);
  }
}

function tryUtf8(bytes) {
  try {
    return utf8Decoder.decode(bytes);
  } catch (_) {
    return null;
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new TypeError('expected a Uint8Array, an ArrayBuffer or an array of bytes');
}

/**
 * The payload of one whole frame (prefix included), checked against `max`:
 * a length over it is refused from the prefix alone (code 2).
 */
function payloadOf(data, max) {
  const bytes = asBytes(data);
  if (bytes.length < 4) throw malformed('incomplete length prefix');
  const length = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
  if (length > max) throw new ProtocolError(2, `frame of ${length} bytes is over the limit of ${max}`);
  if (bytes.length < 4 + length) throw malformed('incomplete frame');
  if (bytes.length > 4 + length) throw malformed('bytes after the frame');
  return bytes.subarray(4);
}

function message(r, type) {
  const id = r.u64('truncated message id');
  const ts_ms = r.u64('truncated timestamp');
  const from = r.nick();
  const to = r.recipients();
  const text = r.text();
  return { type, id, ts_ms, from, to, text };
}

/** Decodes a hub frame's payload (opcode first, no length prefix). */
export function decodeHubPayload(data) {
  const r = new Reader(asBytes(data));
  const opcode = r.u8('empty frame');
  let frame;
  switch (opcode) {
    case OPCODE.WELCOME: {
      const version = r.u16('truncated version');
      const max_frame = r.u32('truncated max frame');
      const nick = r.nick();
      const roster = r.nicks();
      frame = { type: 'WELCOME', version, max_frame, nick, roster };
      if (r.remaining() > 0) frame.options = r.u32('truncated options');
      break;
    }
    case OPCODE.MESSAGE:
      frame = message(r, 'MESSAGE');
      break;
    case OPCODE.STORED_MESSAGE:
      frame = message(r, 'STORED_MESSAGE');
      break;
    case OPCODE.SEQUENCED: {
      const seq = r.u64('truncated sequence number');
      const { id, ts_ms, from, to, text } = message(r, 'SEQUENCED');
      frame = { type: 'SEQUENCED', seq, id, ts_ms, from, to, text };
      break;
    }
    case OPCODE.ACK: {
      const client_id = r.u64('truncated client id');
      const message_id = r.u64('truncated message id');
      const delivered = r.u32('truncated delivered count');
      const count = r.count(3, 'status');
      const statuses = [];
      for (let i = 0; i < count; i++) {
        const nick = r.nick();
        statuses.push({ nick, code: r.u16('truncated status') });
      }
      frame = { type: 'ACK', client_id, message_id, delivered, statuses };
      break;
    }
    case OPCODE.ACK_RUN: {
      const first_client_id = r.u64('truncated client id');
      const first_message_id = r.u64('truncated message id');
      const count = r.u32('truncated run length');
      const last = BigInt(count) - 1n;
      if (count === 0 || first_client_id + last > U64_MAX || first_message_id + last > U64_MAX) {
        throw malformed('empty or overflowing ack run');
      }
      frame = { type: 'ACK_RUN', first_client_id, first_message_id, count };
      break;
    }
    case OPCODE.PRESENCE: {
      const state = r.u8('truncated presence state');
      if (state > 1) throw malformed('unknown presence state');
      const ts_ms = r.u64('truncated timestamp');
      frame = { type: 'PRESENCE', online: state === 1, ts_ms, nick: r.nick() };
      break;
    }
    case OPCODE.ROSTER:
      frame = { type: 'ROSTER', nicks: r.nicks() };
      break;
    case OPCODE.ERROR: {
      const code = r.u16('truncated error code');
      const reference = r.u64('truncated error reference');
      frame = { type: 'ERROR', code, reference, message: r.text() };
      break;
    }
    case OPCODE.ACCOUNT_DONE: {
      const action = r.action();
      frame = { type: 'ACCOUNT_DONE', action, nick: r.nick() };
      break;
    }
    case OPCODE.MAILBOX: {
      const count = r.u32('truncated stored count');
      frame = { type: 'MAILBOX', count, expired: r.u32('truncated expired count') };
      break;
    }
    case OPCODE.USERS: {
      const count = r.count(10, 'users');
      const users = [];
      for (let i = 0; i < count; i++) users.push(r.user());
      frame = { type: 'USERS', users };
      break;
    }
    case OPCODE.USER:
      frame = { type: 'USER', ...r.user() };
      break;
    case OPCODE.RECEIPT: {
      const count = r.count(17, 'receipt');
      const receipts = [];
      for (let i = 0; i < count; i++) {
        const message_id = r.u64('truncated receipt message id');
        const received_ms = r.u64('truncated receipt time');
        receipts.push({ message_id, received_ms, recipient: r.nick() });
      }
      frame = { type: 'RECEIPT', receipts };
      break;
    }
    case OPCODE.PING:
      frame = { type: 'PING', token: r.u64('truncated ping token') };
      break;
    case OPCODE.PONG:
      frame = { type: 'PONG', token: r.u64('truncated pong token') };
      break;
    default:
      throw malformed(`unknown opcode 0x${opcode.toString(16).padStart(2, '0')}`);
  }
  r.finish();
  return frame;
}

/** Decodes one whole hub frame (length prefix included). */
export function decodeHub(data, max = DEFAULT_MAX_FRAME) {
  return decodeHubPayload(payloadOf(data, max));
}

/** Decodes a client frame's payload, as the hub does (for tests). */
export function decodeClientPayload(data) {
  const r = new Reader(asBytes(data));
  const opcode = r.u8('empty frame');
  let frame;
  switch (opcode) {
    case OPCODE.HELLO: {
      const version = r.u16('truncated version');
      const raw = r.nickRaw();
      const text = tryUtf8(raw);
      frame = { type: 'HELLO', version, nick: text === null ? raw.slice() : text };
      if (r.remaining() > 0) {
        frame.options = r.u32('truncated options');
        if (r.remaining() > 0) frame.password = r.text();
      }
      break;
    }
    case OPCODE.SEND: {
      const id = r.u64('truncated id');
      const to = r.recipients();
      frame = { type: 'SEND', id, to, text: r.text() };
      break;
    }
    case OPCODE.WHO:
      frame = { type: 'WHO' };
      break;
    case OPCODE.QUIT:
      frame = { type: 'QUIT' };
      break;
    case OPCODE.PING:
      frame = { type: 'PING', token: r.u64('truncated ping token') };
      break;
    case OPCODE.PONG:
      frame = { type: 'PONG', token: r.u64('truncated pong token') };
      break;
    case OPCODE.ACCOUNT: {
      const action = r.action();
      const nick = r.nick();
      const password = r.text();
      frame = { type: 'ACCOUNT', action, nick, password, new_password: r.text() };
      break;
    }
    case OPCODE.CONFIRM: {
      const count = r.count(8, 'ids');
      const ids = [];
      for (let i = 0; i < count; i++) ids.push(r.u64('truncated id'));
      frame = { type: 'CONFIRM', ids };
      break;
    }
    case OPCODE.CONFIRM_RECEIPTS: {
      const count = r.count(9, 'receipts');
      const receipts = [];
      for (let i = 0; i < count; i++) {
        const message_id = r.u64('truncated receipt message id');
        receipts.push({ message_id, recipient: r.nick() });
      }
      frame = { type: 'CONFIRM_RECEIPTS', receipts };
      break;
    }
    default:
      throw malformed(`unknown opcode 0x${opcode.toString(16).padStart(2, '0')}`);
  }
  r.finish();
  return frame;
}

/** Decodes one whole client frame (length prefix included), as the hub does. */
export function decodeClient(data, max = DEFAULT_MAX_FRAME) {
  return decodeClientPayload(payloadOf(data, max));
}

// ---------------------------------------------------------------- writing

function toU64(value, what) {
  let v;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]+$/.test(value)) v = BigInt(value);
  else throw new TypeError(`${what} must be a u64 (a BigInt, a safe integer or a decimal string)`);
  if (v < 0n || v > U64_MAX) throw new RangeError(`${what} is out of the u64 range`);
  return v;
}

function checkInt(value, max, what) {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer from 0 to ${max}`);
  }
  return value;
}

class Writer {
  constructor() {
    this.parts = [];
    this.length = 0;
  }

  push(bytes) {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  fixed(size, set) {
    const bytes = new Uint8Array(size);
    set(new DataView(bytes.buffer));
    this.push(bytes);
  }

  u8(v, what = 'u8') {
    checkInt(v, 0xff, what);
    this.push(Uint8Array.of(v));
  }

  u16(v, what = 'u16') {
    checkInt(v, 0xffff, what);
    this.fixed(2, (d) => d.setUint16(0, v, false));
  }

  u32(v, what = 'u32') {
    checkInt(v, 0xffffffff, what);
    this.fixed(4, (d) => d.setUint32(0, v, false));
  }

  u64(v, what = 'u64') {
    const big = toU64(v, what);
    this.fixed(8, (d) => d.setBigUint64(0, big, false));
  }

  nick(nick, what = 'nickname') {
    let bytes;
    if (typeof nick === 'string') bytes = utf8Encoder.encode(nick);
    else if (nick instanceof Uint8Array) bytes = nick;
    else throw new TypeError(`${what} must be a string`);
    if (bytes.length > 255) throw new RangeError(`${what} is longer than 255 bytes`);
    this.u8(bytes.length);
    this.push(bytes);
  }

  text(text, what = 'text') {
    if (typeof text !== 'string') throw new TypeError(`${what} must be a string`);
    const bytes = utf8Encoder.encode(text);
    this.u32(bytes.length, `${what} length`);
    this.push(bytes);
  }

  nicks(nicks) {
    if (!Array.isArray(nicks)) throw new TypeError('nicks must be an array of strings');
    this.u32(nicks.length, 'nicks count');
    for (const nick of nicks) this.nick(nick);
  }

  recipients(to) {
    if (to === 'everyone') {
      this.u8(0x01);
    } else if (Array.isArray(to)) {
      this.u8(0x00);
      this.nicks(to);
    } else {
      throw new TypeError("to must be 'everyone' or an array of nicknames");
    }
  }

  user(user) {
    if (!Number.isInteger(user.flags) || (user.flags & ~3) !== 0 || user.flags < 0) {
      throw new RangeError('user flags may only have bits 0 and 1');
    }
    this.u8(user.flags);
    this.u64(user.last_seen_ms, 'last_seen_ms');
    this.nick(user.nick);
  }

  action(action) {
    if (action !== 1 && action !== 2 && action !== 3) throw new RangeError('action must be 1, 2 or 3');
    this.u8(action);
  }

  /** The whole frame: the u32 length of what was written, then it. */
  frame() {
    if (this.length > 0xffffffff) throw new RangeError('frame too long');
    const out = new Uint8Array(4 + this.length);
    new DataView(out.buffer).setUint32(0, this.length, false);
    let at = 4;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

function required(frame, field) {
  if (frame[field] === undefined) throw new TypeError(`${frame.type} needs ${field}`);
  return frame[field];
}

/** Encodes a client frame (an object, above) as a whole frame, prefix included. */
export function encodeClient(frame) {
  if (!frame || typeof frame !== 'object') throw new TypeError('a frame is an object with a type');
  const w = new Writer();
  switch (frame.type) {
    case 'HELLO': {
      w.u8(OPCODE.HELLO);
      w.u16(frame.version === undefined ? PROTOCOL_VERSION : frame.version, 'version');
      w.nick(required(frame, 'nick'));
      const hasPassword = frame.password !== undefined && frame.password !== null;
      if (frame.options !== undefined && frame.options !== null) w.u32(frame.options, 'options');
      else if (hasPassword) w.u32(0, 'options');
      if (hasPassword) w.text(frame.password, 'password');
      break;
    }
    case 'SEND':
      w.u8(OPCODE.SEND);
      w.u64(required(frame, 'id'), 'id');
      w.recipients(required(frame, 'to'));
      w.text(required(frame, 'text'));
      break;
    case 'WHO':
      w.u8(OPCODE.WHO);
      break;
    case 'QUIT':
      w.u8(OPCODE.QUIT);
      break;
    case 'PING':
    case 'PONG':
      w.u8(OPCODE[frame.type]);
      w.u64(required(frame, 'token'), 'token');
      break;
    case 'ACCOUNT':
      w.u8(OPCODE.ACCOUNT);
      w.action(required(frame, 'action'));
      w.nick(required(frame, 'nick'));
      w.text(required(frame, 'password'), 'password');
      w.text(frame.new_password === undefined ? '' : frame.new_password, 'new_password');
      break;
    case 'CONFIRM': {
      const ids = required(frame, 'ids');
      w.u8(OPCODE.CONFIRM);
      w.u32(ids.length, 'ids count');
      for (const id of ids) w.u64(id, 'id');
      break;
    }
    case 'CONFIRM_RECEIPTS': {
      const receipts = required(frame, 'receipts');
      w.u8(OPCODE.CONFIRM_RECEIPTS);
      w.u32(receipts.length, 'receipts count');
      for (const receipt of receipts) {
        w.u64(required(receipt, 'message_id'), 'message id');
        w.nick(required(receipt, 'recipient'), 'recipient');
      }
      break;
    }
    default:
      throw new TypeError(`not a client frame: ${frame.type}`);
  }
  return w.frame();
}

function writeMessage(w, frame) {
  w.u64(required(frame, 'id'), 'id');
  w.u64(required(frame, 'ts_ms'), 'ts_ms');
  w.nick(required(frame, 'from'));
  w.recipients(required(frame, 'to'));
  w.text(required(frame, 'text'));
}

/** Encodes a hub frame (for tests and fake hubs), prefix included. */
export function encodeHub(frame) {
  if (!frame || typeof frame !== 'object') throw new TypeError('a frame is an object with a type');
  const w = new Writer();
  switch (frame.type) {
    case 'WELCOME':
      w.u8(OPCODE.WELCOME);
      w.u16(frame.version === undefined ? PROTOCOL_VERSION : frame.version, 'version');
      w.u32(required(frame, 'max_frame'), 'max_frame');
      w.nick(required(frame, 'nick'));
      w.nicks(required(frame, 'roster'));
      if (frame.options !== undefined && frame.options !== null) w.u32(frame.options, 'options');
      break;
    case 'MESSAGE':
    case 'STORED_MESSAGE':
      w.u8(OPCODE[frame.type]);
      writeMessage(w, frame);
      break;
    case 'SEQUENCED':
      w.u8(OPCODE.SEQUENCED);
      w.u64(required(frame, 'seq'), 'seq');
      writeMessage(w, frame);
      break;
    case 'ACK': {
      const statuses = required(frame, 'statuses');
      w.u8(OPCODE.ACK);
      w.u64(required(frame, 'client_id'), 'client_id');
      w.u64(required(frame, 'message_id'), 'message_id');
      w.u32(required(frame, 'delivered'), 'delivered');
      w.u32(statuses.length, 'statuses count');
      for (const s of statuses) {
        w.nick(s.nick);
        w.u16(s.code, 'status');
      }
      break;
    }
    case 'ACK_RUN':
      w.u8(OPCODE.ACK_RUN);
      w.u64(required(frame, 'first_client_id'), 'first_client_id');
      w.u64(required(frame, 'first_message_id'), 'first_message_id');
      w.u32(required(frame, 'count'), 'count');
      break;
    case 'PRESENCE':
      w.u8(OPCODE.PRESENCE);
      w.u8(frame.online ? 1 : 0);
      w.u64(required(frame, 'ts_ms'), 'ts_ms');
      w.nick(required(frame, 'nick'));
      break;
    case 'ROSTER':
      w.u8(OPCODE.ROSTER);
      w.nicks(required(frame, 'nicks'));
      break;
    case 'ERROR':
      w.u8(OPCODE.ERROR);
      w.u16(required(frame, 'code'), 'code');
      w.u64(frame.reference === undefined ? 0n : frame.reference, 'reference');
      w.text(required(frame, 'message'), 'message');
      break;
    case 'ACCOUNT_DONE':
      w.u8(OPCODE.ACCOUNT_DONE);
      w.action(required(frame, 'action'));
      w.nick(required(frame, 'nick'));
      break;
    case 'MAILBOX':
      w.u8(OPCODE.MAILBOX);
      w.u32(required(frame, 'count'), 'count');
      w.u32(required(frame, 'expired'), 'expired');
      break;
    case 'USERS': {
      const users = required(frame, 'users');
      w.u8(OPCODE.USERS);
      w.u32(users.length, 'users count');
      for (const user of users) w.user(user);
      break;
    }
    case 'USER':
      w.u8(OPCODE.USER);
      w.user(frame);
      break;
    case 'RECEIPT': {
      const receipts = required(frame, 'receipts');
      w.u8(OPCODE.RECEIPT);
      w.u32(receipts.length, 'receipts count');
      for (const receipt of receipts) {
        w.u64(receipt.message_id, 'message_id');
        w.u64(receipt.received_ms, 'received_ms');
        w.nick(receipt.recipient);
      }
      break;
    }
    case 'PING':
    case 'PONG':
      w.u8(OPCODE[frame.type]);
      w.u64(required(frame, 'token'), 'token');
      break;
    default:
      throw new TypeError(`not a hub frame: ${frame.type}`);
  }
  return w.frame();
}

// ---------------------------------------------------------------- streams

/**
 * Cuts a byte stream into whole frames. Each WebSocket message is expected to
 * be one frame, but nothing is lost if one holds several or part of one.
 * push() returns the whole frames (prefix included) now complete; it throws a
 * ProtocolError(2) for a length prefix over `limit`, judged from the prefix
 * alone.
 */
export class FrameReader {
  constructor(limit = DEFAULT_MAX_FRAME) {
    this.limit = limit;
    this.buffer = new Uint8Array(0);
  }

  push(data) {
    const bytes = asBytes(data);
    if (this.buffer.length === 0) {
      this.buffer = bytes.slice();
    } else {
      const joined = new Uint8Array(this.buffer.length + bytes.length);
      joined.set(this.buffer);
      joined.set(bytes, this.buffer.length);
      this.buffer = joined;
    }
    const frames = [];
    let at = 0;
    while (this.buffer.length - at >= 4) {
      const view = new DataView(this.buffer.buffer, this.buffer.byteOffset + at, 4);
      const length = view.getUint32(0, false);
      if (length > this.limit) {
        throw new ProtocolError(2, `frame of ${length} bytes is over the limit of ${this.limit}`);
      }
      if (this.buffer.length - at < 4 + length) break;
      frames.push(this.buffer.slice(at, at + 4 + length));
      at += 4 + length;
    }
    this.buffer = this.buffer.slice(at);
    return frames;
  }

  /** Bytes of a frame begun but not complete. */
  pending() {
    return this.buffer.length;
  }
}

// ---------------------------------------------------------------- helpers

/** Bytes from hex: `"00 00 00 01 03"`, with or without spaces; `#` comments allowed. */
export function fromHex(hex) {
  const digits = String(hex)
    .split('\n')
    .map((line) => line.split('#')[0])
    .join('')
    .replace(/[\s,]/g, '');
  if (digits.length % 2 !== 0 || /[^0-9a-fA-F]/.test(digits)) throw new TypeError('not hex');
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substr(i * 2, 2), 16);
  return out;
}

/** Hex of bytes, two digits each, separated by spaces. */
export function toHex(bytes) {
  return Array.from(asBytes(bytes), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * A frame as plain JSON-able data (for WebDriver): BigInts become decimal
 * strings and byte arrays arrays of numbers.
 */
export function plain(value) {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [key, v] of Object.entries(value)) out[key] = plain(v);
    return out;
  }
  return value;
}

/** UTF-8 byte length of a string, as the wire counts it. */
export function utf8Length(text) {
  return utf8Encoder.encode(text).length;
}

export const chinwagCodec = Object.freeze({
  PROTOCOL_VERSION,
  UNREGISTERED_MAX_FRAME,
  DEFAULT_MAX_FRAME,
  OPCODE,
  OPTIONS,
  USER_FLAGS,
  ACTION,
  CODE,
  codeName,
  codeDescription,
  codeIsFatal,
  ProtocolError,
  encodeClient,
  decodeClient,
  decodeClientPayload,
  encodeHub,
  decodeHub,
  decodeHubPayload,
  FrameReader,
  fromHex,
  toHex,
  plain,
  utf8Length,
});

globalThis.chinwagCodec = chinwagCodec;
