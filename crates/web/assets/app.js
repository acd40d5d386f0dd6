// app.js: the chinwag web chat page. It speaks the binary protocol of
// docs/protocol.md over a WebSocket to /ws on the page's own origin (ws: or
// wss: as the page's scheme, subprotocol `chinwag.v1`), one frame per binary
// message, through the codec in chinwag.js.
//
// Test contract (ids and data-testid attributes a browser test may rely on):
//
//   connection state  #connection-state [data-testid=connection-state]
//                       data-state: disconnected | connecting | registering | online | closed
//   who am I          #whoami [data-testid=whoami]  data-nick (the registered spelling)
//   banner            #banner [data-testid=banner] (role=alert; hidden when empty)
//                       data-kind: error (the hub's or the connection's) | input (a line
//                       that could not be sent; cleared by the next good line) | info; data-code: the hub's ERROR code ('' if none);
//                       data-code-name: its name from section 7 (NICK_TAKEN...)
//                       #banner-text [data-testid=banner-text]: the text shown
//                       #reconnect [data-testid=reconnect]: shown once a session was lost
//                       #banner-dismiss [data-testid=banner-dismiss]
//   login             #login-view [data-testid=login-view], #login-form [data-testid=login-form]
//                       #login-nick [data-testid=login-nick]
//                       #login-password [data-testid=login-password]
//                       #login-guest [data-testid=login-guest]: join as a guest (nickname only)
//                       #login-account [data-testid=login-account]: log in (nickname + password)
//                       #login-create [data-testid=login-create]: create the account, then log in
//                       Enter in the form logs in if a password is typed, else joins as a guest.
//   chat              #chat-view [data-testid=chat-view] (hidden until WELCOME)
//                       #message-input [data-testid=message-input]; Enter sends
//                       #send-button [data-testid=send-button]
//                       #leave [data-testid=leave]: QUIT and back to the login form
//   message log       #log [data-testid=log] (role=log, aria-live=polite), one <li> per entry:
//     a message         [data-testid=message]
//                         data-direction: in | out
//                         data-sender: the sender's nickname (yours for out)
//                         data-stored: true (came from the mailbox: STORED_MESSAGE or
//                                      SEQUENCED at login) | false
//                         data-text: the text exactly as sent
//                         data-to: 'everyone', or the recipients joined with ','
//                         data-id: the hub's message id (decimal; for out once ACKed)
//                         data-ts: ms since the epoch (hub clock for in, local for out)
//                         data-state (out only): pending | acked | failed | unacknowledged
//                         data-delivered (out only, once ACKed): the ACK's delivered count
//       its outcomes    [data-testid=outcome] inside an out message, one per recipient
//                         data-recipient: the name as you wrote it (ACK statuses), or as the
//                                         hub spells it for a broadcast's failures
//                         data-status: delivered | stored | no_such_user | unable_to_deliver |
//                                      mailbox_full | store_failed | code_<n> | received
//                         data-code: the ACK status code; data-received-ms once received
//                         text: "bob: delivered", ..., "received by bob HH:MM:SS"
//       a refused send  [data-testid=send-error] inside an out message: data-code, text
//     a note            [data-testid=note] data-kind: presence | mailbox | info | error | receipt
//   user table        #users [data-testid=users], #users-count [data-testid=users-count]
//                       each row <tr data-testid=user>: data-nick, data-online (true|false),
//                       data-registered (true|false), data-last-seen (ms, 0 = never/now),
//                       data-self (true for you); a button [data-testid=user-message]
//                       puts "@nick " in the message input
//                       #users-toggle [data-testid=users-toggle] folds it away and back on
//                       narrow screens (<= 720px; open at first, aria-expanded says which)
//
// Options asked for in HELLO: USERS | CONFIRMS | RECEIPTS (56). Received
// MESSAGEs (with CONFIRMS granted), STORED_MESSAGEs and SEQUENCEDs are
// confirmed with CONFIRM, batched (after 50 ms or 64 ids).

import {
  CODE,
  FrameReader,
  OPTIONS,
  ProtocolError,
  UNREGISTERED_MAX_FRAME,
  USER_FLAGS,
  codeDescription,
  codeIsFatal,
  codeName,
  decodeHub,
  encodeClient,
  utf8Length,
} from './chinwag.js';

const ASKED_OPTIONS = OPTIONS.USERS | OPTIONS.CONFIRMS | OPTIONS.RECEIPTS;
const CONFIRM_DELAY_MS = 50;
const CONFIRM_BATCH = 64;
const LOG_LIMIT = 5000;
const WS_SUBPROTOCOL = 'chinwag.v1';

const HELP = [
  '@nick text: to one user',
  '@a @b text (or @a, @b: text): to several',
  'text with no @: to everyone; //text sends "/text" to everyone',
  '/msg a,b text: to a and b; /me waves: an action, to everyone',
  '/who: refresh who is online; /quit: leave; /help: this',
];

const STATUS_WORDS = {
  0: ['delivered', 'delivered'],
  30: ['no_such_user', 'no such user'],
  31: ['unable_to_deliver', 'not delivered (their connection is closing)'],
  32: ['stored', 'stored (offline; in their mailbox)'],
  33: ['mailbox_full', 'not delivered (their mailbox is full)'],
  34: ['store_failed', 'not delivered (the hub could not store it)'],
};

// ---------------------------------------------------------------- DOM

const $ = (id) => document.getElementById(id);
let ui = null;

function findUi() {
  return {
    connection: $('connection-state'),
    whoami: $('whoami'),
    banner: $('banner'),
    bannerText: $('banner-text'),
    reconnect: $('reconnect'),
    bannerDismiss: $('banner-dismiss'),
    loginView: $('login-view'),
    loginForm: $('login-form'),
    loginNick: $('login-nick'),
    loginPassword: $('login-password'),
    loginGuest: $('login-guest'),
    loginAccount: $('login-account'),
    loginCreate: $('login-create'),
    chatView: $('chat-view'),
    log: $('log'),
    sendForm: $('send-form'),
    input: $('message-input'),
    sendButton: $('send-button'),
    usersPanel: $('users-panel'),
    usersToggle: $('users-toggle'),
    usersBody: $('users-body'),
    usersCount: $('users-count'),
    leave: $('leave'),
  };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child);
  }
  return node;
}

// ---------------------------------------------------------------- text

const WHITESPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_WS = new RegExp(`^[${WHITESPACE}]+`);
const TRAILING_WS = new RegExp(`[${WHITESPACE}]+$`);
const ONE_WS = new RegExp(`[${WHITESPACE}]`);
const NAME_END = new RegExp(`[${WHITESPACE}:,]`);

const trimStart = (s) => s.replace(LEADING_WS, '');
const trim = (s) => trimStart(s).replace(TRAILING_WS, '');

/** Splits at the first whitespace character: [before, after] (after without it), or null. */
function splitOnceWs(s) {
  const m = ONE_WS.exec(s);
  if (!m) return null;
  return [s.slice(0, m.index), s.slice(m.index + m[0].length)];
}

/**
 * What a typed line asks for: the CLI's syntax (crates/protocol/src/text.rs
 * parse_line, and chat.rs's /msg and /me).
 */
export function parseInput(rawLine, nick) {
  const line = rawLine.replace(/[\r\n]+$/, '');
  if (line.startsWith('/')) {
    const rest = line.slice(1);
    const split = splitOnceWs(rest);
    const command = split ? split[0] : rest;
    const args = split ? trimStart(split[1]) : '';
    if (command.toLowerCase() === 'msg') {
      const parts = splitOnceWs(args);
      const toPart = parts ? parts[0] : args;
      const text = trimStart(parts ? parts[1] : '');
      const to = toPart
        .split(',')
        .map((name) => name.replace(/^@+/, ''))
        .filter((name) => name.length > 0);
      if (to.length === 0 || text.length === 0) return { kind: 'error', message: 'usage: /msg nick text' };
      return { kind: 'send', to, text };
    }
    if (command.toLowerCase() === 'me') {
      if (trim(args).length === 0) return { kind: 'error', message: 'usage: /me text, as in /me waves' };
      return { kind: 'send', to: 'everyone', text: `* ${nick} ${args}` };
    }
  }
  if (trim(line).length === 0) return { kind: 'nothing' };
  if (line.startsWith('/')) {
    const rest = line.slice(1);
    if (rest.startsWith('/')) return { kind: 'send', to: 'everyone', text: rest };
    const command = trimStart(rest).split(ONE_WS)[0] || '';
    switch (command.toLowerCase()) {
      case 'who':
        return { kind: 'who' };
      case 'quit':
      case 'exit':
        return { kind: 'quit' };
      case 'help':
      case '?':
        return { kind: 'help' };
      default:
        return { kind: 'error', message: `unknown command /${command}; try /help` };
    }
  }
  if (!trimStart(line).startsWith('@')) return { kind: 'send', to: 'everyone', text: line };
  const names = [];
  let rest = trimStart(line);
  while (rest.startsWith('@')) {
    const after = rest.slice(1);
    const m = NAME_END.exec(after);
    const end = m ? m.index : after.length;
    const name = after.slice(0, end);
    if (name.length === 0) return { kind: 'error', message: 'an @ needs a nickname right after it, as in @bob' };
    names.push(name);
    let tail = after.slice(end);
    if (tail.startsWith(':') || tail.startsWith(',')) tail = tail.slice(1);
    rest = trimStart(tail);
  }
  if (rest.length === 0) {
    return { kind: 'error', message: 'nothing to send: write the message after the names, as in @bob hello' };
  }
  return { kind: 'send', to: names, text: rest };
}

/**
 * Text as it can be shown on one line (section 11, item 10; the protocol
 * crate's text::visible): line ends, controls and bidirectional overrides
 * become visible escapes.
 */
export function visible(text) {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (
      (c >= 0x80 && c <= 0x9f) ||
      c === 0x2028 ||
      c === 0x2029 ||
      c === 0x061c ||
      c === 0x200e ||
      c === 0x200f ||
      (c >= 0x202a && c <= 0x202e) ||
      (c >= 0x2066 && c <= 0x2069)
    ) {
      out += `\\u{${c.toString(16)}}`;
    } else out += ch;
  }
  return out;
}

/** Nicknames compare ignoring ASCII case only (section 6). */
function fold(nick) {
  return nick.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function compareNicks(a, b) {
  const x = fold(a);
  const y = fold(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const pad = (n) => String(n).padStart(2, '0');

function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

function when(ms) {
  const d = new Date(ms);
  if (sameDay(d, new Date())) return clock(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`;
}

function timeEl(ms) {
  const iso = Number.isFinite(ms) ? new Date(ms).toISOString() : '';
  return el('time', { datetime: iso, className: 'time', text: when(ms) });
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------- state

const app = {
  /** The current connection, or null. */
  session: null,
  /** What the person logged in with: { nick, password (or null), create }. */
  credentials: null,
  /** The nickname as registered (WELCOME), and folded, for the current or last session. */
  nick: null,
  /** Ids (decimal strings) of the messages shown: a stored message shown already is hidden. */
  shown: new Set(),
  /** SEQUENCED numbers shown, for the same reason. */
  shownSeq: new Set(),
  /** Hub message id (decimal) -> the record of a message this page sent. */
  sent: new Map(),
  /** Receipts for messages whose ACK has not come yet: message id -> [receipt]. */
  heldReceipts: new Map(),
  /** The table of users: folded nick -> { nick, flags, last_seen_ms (Number) }. */
  users: new Map(),
  usersScheduled: false,
};

// ---------------------------------------------------------------- banner and state

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = text;
  document.body.dataset.connection = state;
}

function showBanner(kind, text, { code = null, reconnect = false } = {}) {
  ui.banner.hidden = false;
  ui.banner.dataset.kind = kind;
  ui.banner.dataset.code = code === null ? '' : String(code);
  ui.banner.dataset.codeName = code === null ? '' : codeName(code);
  ui.bannerText.textContent = text;
  ui.reconnect.hidden = !reconnect;
}

function hideBanner() {
  ui.banner.hidden = true;
  ui.banner.dataset.kind = '';
  ui.banner.dataset.code = '';
  ui.banner.dataset.codeName = '';
  ui.bannerText.textContent = '';
  ui.reconnect.hidden = true;
}

function describeError(frame) {
  const name = codeName(frame.code);
  const text = frame.message || codeDescription(frame.code) || 'error';
  return `${visible(text)} (error ${frame.code} ${name})`;
}

/** Advice after a refused login or account request (section 11, item 3). */
function loginAdvice(code) {
  switch (code) {
    case CODE.NICK_TAKEN:
      return 'Pick another nickname, or wait for it to be free.';
    case CODE.NICK_REGISTERED:
      return 'That nickname has an account: give its password and log in, or pick another.';
    case CODE.BAD_PASSWORD:
    case CODE.NO_SUCH_ACCOUNT:
      return 'Check the nickname and password.';
    case CODE.LOGIN_THROTTLED:
      return 'Wait a minute before trying again.';
    case CODE.ACCOUNT_EXISTS:
      return 'That account exists already: log in to it instead.';
    case CODE.REGISTRATION_CLOSED:
      return "This hub's operator creates the accounts.";
    case CODE.ACCOUNT_REQUIRED:
      return 'This hub admits only users with an account.';
    case CODE.ACCOUNTS_UNAVAILABLE:
      return 'This hub keeps no accounts: join as a guest.';
    case CODE.BAD_REQUEST:
      return 'A password is 8 to 1024 bytes.';
    default:
      return code >= 20 && code <= 29 ? 'Pick another nickname.' : '';
  }
}

function showView(chat) {
  ui.chatView.hidden = !chat;
  ui.loginView.hidden = chat;
  if (!chat) ui.whoami.hidden = true;
}

// ---------------------------------------------------------------- the log

function appendToLog(item) {
  const log = ui.log;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  log.append(item);
  while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function note(kind, text) {
  appendToLog(el('li', { className: `note note-${kind}`, 'data-testid': 'note', 'data-kind': kind, text }));
}

function recipientsText(to) {
  if (to === 'everyone') return null;
  return `to ${to.map(visible).join(', ')}`;
}

function messageItem({ direction, sender, to, text, ts, id, stored }) {
  const toText = recipientsText(to);
  const meta = el(
    'p',
    { className: 'meta' },
    timeEl(ts),
    ' ',
    el('span', { className: 'sender', text: direction === 'out' ? `${visible(sender)} (you)` : visible(sender) }),
    toText ? ' ' : null,
    toText ? el('span', { className: 'to', text: toText }) : null,
    stored ? ' ' : null,
    stored ? el('span', { className: 'badge', text: 'while you were away' }) : null,
  );
  return el(
    'li',
    {
      className: `message ${direction}${stored ? ' stored' : ''}${to === 'everyone' ? ' broadcast' : ' direct'}`,
      'data-testid': 'message',
      'data-direction': direction,
      'data-sender': sender,
      'data-stored': stored ? 'true' : 'false',
      'data-text': text,
      'data-to': to === 'everyone' ? 'everyone' : to.join(','),
      'data-id': id === null ? undefined : id,
      'data-ts': String(ts),
    },
    meta,
    el('p', { className: 'text', text: visible(text) }),
  );
}

function showIncoming(frame, stored) {
  const id = frame.id.toString();
  if (app.shown.has(id)) return false;
  app.shown.add(id);
  const item = messageItem({
    direction: 'in',
    sender: frame.from,
    to: frame.to,
    text: frame.text,
    ts: Number(frame.ts_ms),
    id,
    stored,
  });
  appendToLog(item);
  return true;
}

// ---------------------------------------------------------------- outcomes

function outcomeText(nick, code) {
  const words = STATUS_WORDS[code];
  return `${visible(nick)}: ${words ? words[1] : `status ${code} ${codeName(code)}`}`;
}

function statusName(code) {
  const words = STATUS_WORDS[code];
  return words ? words[0] : `code_${code}`;
}

function addOutcome(record, nick, code) {
  const item = el('li', {
    className: `outcome status-${statusName(code)}`,
    'data-testid': 'outcome',
    'data-recipient': nick,
    'data-status': statusName(code),
    'data-code': String(code),
    text: outcomeText(nick, code),
  });
  record.outcomes.append(item);
  record.byRecipient.set(fold(nick), item);
}

function applyAck(record, frame) {
  const messageId = frame.message_id.toString();
  record.messageId = messageId;
  record.item.dataset.id = messageId;
  record.item.dataset.state = 'acked';
  record.item.dataset.delivered = String(frame.delivered);
  app.sent.set(messageId, record);
  if (record.to === 'everyone') {
    record.summary.textContent = `to everyone: delivered to ${plural(frame.delivered, 'user')}`;
  } else {
    record.summary.textContent = '';
  }
  for (const status of frame.statuses) addOutcome(record, status.nick, status.code);
  record.summary.hidden = record.summary.textContent === '';
  const held = app.heldReceipts.get(messageId);
  if (held) {
    app.heldReceipts.delete(messageId);
    for (const receipt of held) applyReceipt(record, receipt);
  }
}

function applyReceipt(record, receipt) {
  const key = fold(receipt.recipient);
  let item = record.byRecipient.get(key);
  if (!item) {
    item = el('li', { className: 'outcome', 'data-testid': 'outcome', 'data-recipient': receipt.recipient });
    record.outcomes.append(item);
    record.byRecipient.set(key, item);
  }
  const ms = Number(receipt.received_ms);
  item.dataset.ackStatus = item.dataset.status || '';
  item.dataset.status = 'received';
  item.dataset.receivedMs = String(ms);
  item.className = 'outcome status-received';
  item.textContent = `received by ${visible(receipt.recipient)} ${when(ms)}`;
}

function failSend(record, frame) {
  record.item.dataset.state = 'failed';
  record.summary.hidden = true;
  record.outcomes.append(
    el('li', {
      className: 'outcome send-error',
      'data-testid': 'send-error',
      'data-code': String(frame.code),
      'data-code-name': codeName(frame.code),
      text: `not sent: ${describeError(frame)}`,
    }),
  );
}

// ---------------------------------------------------------------- users

function setUser(nick, flags, lastSeen) {
  app.users.set(fold(nick), { nick, flags, last_seen_ms: lastSeen });
}

function scheduleUsers() {
  if (app.usersScheduled) return;
  app.usersScheduled = true;
  setTimeout(renderUsers, 0);
}

function renderUsers() {
  app.usersScheduled = false;
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest('tr[data-nick]') : null;
  const focusNick = focused && ui.usersBody.contains(focused) ? fold(focused.dataset.nick) : null;
  const rows = [...app.users.values()].sort((a, b) => compareNicks(a.nick, b.nick));
  const me = app.nick ? fold(app.nick) : null;
  let online = 0;
  const fragment = document.createDocumentFragment();
  let toFocus = null;
  for (const user of rows) {
    const isOnline = (user.flags & USER_FLAGS.ONLINE) !== 0;
    const registered = (user.flags & USER_FLAGS.REGISTERED) !== 0;
    const self = fold(user.nick) === me;
    if (isOnline) online++;
    let status;
    if (isOnline) status = registered ? 'online' : 'online (guest)';
    else if (user.last_seen_ms === 0) status = 'offline, never seen';
    else status = `last seen ${when(user.last_seen_ms)}`;
    const button = el('button', {
      type: 'button',
      className: 'user-message quiet',
      'data-testid': 'user-message',
      'data-nick': user.nick,
      'aria-label': `Write to ${visible(user.nick)}`,
      text: 'Write',
    });
    const row = el(
      'tr',
      {
        className: `user ${isOnline ? 'online' : 'offline'}`,
        'data-testid': 'user',
        'data-nick': user.nick,
        'data-online': isOnline ? 'true' : 'false',
        'data-registered': registered ? 'true' : 'false',
        'data-last-seen': String(user.last_seen_ms),
        'data-self': self ? 'true' : 'false',
      },
      el(
        'td',
        { className: 'user-name' },
        el('span', { className: 'dot', 'aria-hidden': 'true' }),
        el('span', { className: 'nick', text: visible(user.nick) }),
        self ? el('span', { className: 'you', text: ' (you)' }) : null,
      ),
      el('td', { className: 'user-status', text: status }),
      el('td', { className: 'user-action' }, button),
    );
    if (focusNick !== null && fold(user.nick) === focusNick) toFocus = button;
    fragment.append(row);
  }
  ui.usersBody.replaceChildren(fragment);
  ui.usersCount.textContent = `(${online} online, ${rows.length} in all)`;
  if (toFocus) toFocus.focus();
}

function usersFromTable(users) {
  app.users.clear();
  for (const user of users) setUser(user.nick, user.flags, Number(user.last_seen_ms));
  scheduleUsers();
}

function usersFromRoster(nicks) {
  // Without the USERS option: the online users only.
  app.users.clear();
  for (const nick of nicks) setUser(nick, USER_FLAGS.ONLINE, 0);
  scheduleUsers();
}

function usersPresence(frame) {
  const key = fold(frame.nick);
  const row = app.users.get(key);
  const ts = Number(frame.ts_ms);
  if (frame.online) {
    if (row) {
      row.flags |= USER_FLAGS.ONLINE;
      row.last_seen_ms = 0;
      row.nick = frame.nick;
    } else {
      setUser(frame.nick, USER_FLAGS.ONLINE, 0);
    }
  } else if (row) {
    if (row.flags & USER_FLAGS.REGISTERED) {
      row.flags &= ~USER_FLAGS.ONLINE;
      row.last_seen_ms = ts;
    } else {
      app.users.delete(key);
    }
  }
  scheduleUsers();
}

function usersChange(frame) {
  const key = fold(frame.nick);
  if (frame.flags === 0) app.users.delete(key);
  else setUser(frame.nick, frame.flags, Number(frame.last_seen_ms));
  scheduleUsers();
}

// ---------------------------------------------------------------- the session

class Session {
  constructor(credentials) {
    this.credentials = credentials;
    this.ws = null;
    this.registered = false;
    this.ended = false;
    this.maxFrame = UNREGISTERED_MAX_FRAME;
    this.granted = 0;
    this.nextId = 1n;
    /** Client id (decimal) -> record of a SEND awaiting its ACK. */
    this.pending = new Map();
    /** MESSAGEs from ourselves that came before our ACK for them: id -> frame. */
    this.heldSelf = new Map();
    this.confirmQueue = [];
    this.confirmTimer = null;
    this.reader = new FrameReader(1 << 20);
    /** Why we are closing it ourselves: null, 'refused', 'leave', 'malformed'. */
    this.closing = null;
    /** The last fatal ERROR the hub sent, shown when the socket closes. */
    this.fatal = null;
    this.awaitingWho = false;
    /** STORED_MESSAGE or SEQUENCED frames still to come from the mailbox at login. */
    this.mailboxLeft = 0;
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/ws`;
    setConnection('connecting', 'Connecting…');
    try {
      this.ws = new WebSocket(url, WS_SUBPROTOCOL);
    } catch (error) {
      this.ended = true;
      failedToConnect(this, `Cannot open a connection to ${url}: ${error.message}`);
      return;
    }
    this.ws.binaryType = 'arraybuffer';
    this.ws.addEventListener('open', () => this.onOpen());
    this.ws.addEventListener('message', (event) => this.onMessage(event));
    this.ws.addEventListener('close', (event) => this.onClose(event));
    // An 'error' event is always followed by 'close', which says what happened.
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.closing === null;
  }

  send(frame) {
    const bytes = encodeClient(frame);
    const payload = bytes.length - 4;
    if (payload > this.maxFrame) {
      throw new RangeError(`that is ${payload} bytes; the hub takes at most ${this.maxFrame} in one frame`);
    }
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.ws.send(bytes);
  }

  /** Sends if it can; a frame that cannot go now is dropped (the socket is closing). */
  trySend(frame) {
    try {
      this.send(frame);
      return true;
    } catch (error) {
      console.warn('chinwag: could not send', frame.type, error);
      return false;
    }
  }

  onOpen() {
    if (this.ended) return;
    setConnection('registering', 'Logging in…');
    const { nick, password, create } = this.credentials;
    try {
      if (create) {
        this.send({ type: 'ACCOUNT', action: 1, nick, password, new_password: '' });
      } else {
        this.hello();
      }
    } catch (error) {
      this.refuse(`Cannot log in: ${error.message}`, null);
    }
  }

  hello() {
    const { nick, password } = this.credentials;
    const frame = { type: 'HELLO', version: 1, nick, options: ASKED_OPTIONS };
    if (password !== null) frame.password = password;
    this.send(frame);
  }

  onMessage(event) {
    if (this.ended || this.closing !== null) return;
    if (!(event.data instanceof ArrayBuffer)) {
      this.malformed('the hub sent a text message where frames are binary');
      return;
    }
    let frames;
    try {
      frames = this.reader.push(new Uint8Array(event.data));
    } catch (error) {
      this.malformed(error.message);
      return;
    }
    for (const bytes of frames) {
      let frame;
      try {
        frame = decodeHub(bytes, this.reader.limit);
      } catch (error) {
        this.malformed(error instanceof ProtocolError ? error.message : String(error));
        return;
      }
      try {
        this.onFrame(frame);
      } catch (error) {
        // A bug of this page, not the hub's: say so and carry on.
        console.error('chinwag: while handling', frame.type, error);
        showBanner('error', `Something went wrong on this page while handling a ${frame.type} frame: ${error.message}`);
      }
      if (this.ended || this.closing !== null) return;
    }
  }

  malformed(reason) {
    this.closing = 'malformed';
    showBanner('error', `The hub sent a frame this page cannot read (${reason}). The connection is closed.`, {
      code: 1,
      reconnect: app.nick !== null && this.registered,
    });
    this.abort(4000, 'malformed frame');
  }

  abort(code, reason) {
    this.clearConfirmTimer();
    try {
      this.ws.close(code, reason);
    } catch (_) {
      // Closing already.
    }
  }

  /** A login or account request refused: say why, leave, and show the form again. */
  refuse(text, code) {
    this.closing = 'refused';
    this.trySend({ type: 'QUIT' });
    this.abort(1000, 'login refused');
    showBanner('error', text, { code });
    showView(false);
    setConnection('disconnected', 'Not connected');
    const focus = code === CODE.BAD_PASSWORD ? ui.loginPassword : ui.loginNick;
    focus.focus();
    focus.select();
  }

  leave() {
    this.closing = 'leave';
    this.flushConfirms();
    this.trySend({ type: 'QUIT' });
    this.abort(1000, 'quit');
  }

  onFrame(frame) {
    if (frame.type === 'PING') {
      this.trySend({ type: 'PONG', token: frame.token });
      return;
    }
    if (frame.type === 'PONG') return;
    if (!this.registered) {
      this.onFrameUnregistered(frame);
      return;
    }
    switch (frame.type) {
      case 'MESSAGE':
        this.onMessageFrame(frame);
        break;
      case 'STORED_MESSAGE':
        showIncoming(frame, true);
        this.confirm(frame.id);
        break;
      case 'SEQUENCED': {
        const seq = frame.seq.toString();
        if (!app.shownSeq.has(seq)) {
          app.shownSeq.add(seq);
          showIncoming(frame, this.mailboxLeft > 0);
        }
        if (this.mailboxLeft > 0) this.mailboxLeft--;
        this.confirm(frame.id);
        break;
      }
      case 'ACK':
        this.onAck(frame);
        break;
      case 'ACK_RUN':
        this.onAckRun(frame);
        break;
      case 'RECEIPT':
        this.onReceipt(frame);
        break;
      case 'PRESENCE':
        usersPresence(frame);
        note('presence', `${visible(frame.nick)} ${frame.online ? 'is online' : 'went offline'}`);
        break;
      case 'USERS':
        usersFromTable(frame.users);
        if (this.awaitingWho) {
          this.awaitingWho = false;
          const online = frame.users.filter((u) => u.flags & USER_FLAGS.ONLINE).map((u) => visible(u.nick));
          note('info', `online: ${online.join(', ') || 'nobody'}`);
        }
        break;
      case 'USER':
        usersChange(frame);
        break;
      case 'ROSTER':
        if (!(this.granted & OPTIONS.USERS)) usersFromRoster(frame.nicks);
        this.awaitingWho = false;
        note('info', `online: ${frame.nicks.map(visible).join(', ') || 'nobody'}`);
        break;
      case 'MAILBOX':
        this.mailboxLeft = frame.count;
        if (frame.count > 0) note('mailbox', `${plural(frame.count, 'message')} while you were away`);
        if (frame.expired > 0) note('mailbox', `${plural(frame.expired, 'message')} expired unread`);
        break;
      case 'ERROR':
        this.onError(frame);
        break;
      case 'ACCOUNT_DONE':
        note('info', `account ${visible(frame.nick)}: done`);
        break;
      case 'WELCOME':
        // Only one per connection; a second would be the hub's mistake.
        break;
      default:
        break;
    }
  }

  onFrameUnregistered(frame) {
    switch (frame.type) {
      case 'ACCOUNT_DONE':
        if (this.credentials.create) {
          this.credentials.create = false;
          app.credentials.create = false;
          try {
            this.hello();
          } catch (error) {
            this.refuse(`Cannot log in: ${error.message}`, null);
          }
        }
        break;
      case 'WELCOME':
        this.onWelcome(frame);
        break;
      case 'ERROR': {
        const fatal = codeIsFatal(frame.code);
        const advice = loginAdvice(frame.code);
        const what = this.credentials.create ? 'Could not create the account' : 'Could not log in';
        const text = `${what}: ${describeError(frame)}${advice ? `. ${advice}` : ''}`;
        if (fatal) {
          // The hub closes the connection next.
          this.fatal = frame;
          showBanner('error', text, { code: frame.code });
        } else {
          // The HELLO (or ACCOUNT) was refused; the connection would stay
          // open, unregistered, until the registration deadline: leave now.
          this.refuse(text, frame.code);
        }
        break;
      }
      default:
        break;
    }
  }

  onWelcome(frame) {
    this.registered = true;
    this.maxFrame = frame.max_frame;
    this.granted = frame.options === undefined ? 0 : frame.options;
    this.reader.limit = Math.min(0xffffffff, Math.max(4 * frame.max_frame, 4 << 20));
    this.mailboxLeft = 0;
    const sameUser = app.nick !== null && fold(app.nick) === fold(frame.nick);
    if (!sameUser) {
      ui.log.replaceChildren();
      app.shown.clear();
      app.shownSeq.clear();
      app.sent.clear();
      app.heldReceipts.clear();
    } else {
      note('info', 'reconnected');
    }
    app.nick = frame.nick;
    ui.whoami.hidden = false;
    ui.whoami.dataset.nick = frame.nick;
    ui.whoami.textContent = `${visible(frame.nick)}${this.credentials.password === null ? ' (guest)' : ''}`;
    setConnection('online', `Online as ${visible(frame.nick)}`);
    hideBanner();
    // With USERS granted, the table comes next in a USERS frame.
    if (this.granted & OPTIONS.USERS) usersFromTable([]);
    else usersFromRoster(frame.roster);
    ui.loginPassword.value = '';
    showView(true);
    ui.input.focus();
  }

  onMessageFrame(frame) {
    const id = frame.id.toString();
    const fromMe = app.nick !== null && fold(frame.from) === fold(app.nick);
    if (fromMe && app.sent.has(id)) {
      // Our own message to ourselves: the entry we sent shows it already.
    } else if (fromMe && this.pending.size > 0) {
      // Probably our own, ahead of its ACK: wait for the ACK to tell.
      this.heldSelf.set(id, frame);
    } else {
      showIncoming(frame, false);
    }
    if (this.granted & OPTIONS.CONFIRMS) this.confirm(frame.id);
  }

  onAck(frame) {
    const record = this.pending.get(frame.client_id.toString());
    if (!record) return;
    this.pending.delete(frame.client_id.toString());
    applyAck(record, frame);
    this.heldSelf.delete(frame.message_id.toString());
    this.settleHeld();
  }

  onAckRun(frame) {
    for (let i = 0n; i < BigInt(frame.count); i++) {
      const clientId = (frame.first_client_id + i).toString();
      const record = this.pending.get(clientId);
      if (!record) continue;
      this.pending.delete(clientId);
      const names = [];
      const seen = new Set();
      for (const name of record.to === 'everyone' ? [] : record.to) {
        if (!seen.has(fold(name))) {
          seen.add(fold(name));
          names.push(name);
        }
      }
      const messageId = frame.first_message_id + i;
      applyAck(record, {
        client_id: frame.first_client_id + i,
        message_id: messageId,
        delivered: names.length,
        statuses: names.map((nick) => ({ nick, code: 0 })),
      });
      this.heldSelf.delete(messageId.toString());
    }
    this.settleHeld();
  }

  /** Once no SEND awaits its ACK, what was held waiting for one is shown. */
  settleHeld() {
    if (this.pending.size > 0) return;
    for (const frame of this.heldSelf.values()) showIncoming(frame, false);
    this.heldSelf.clear();
    for (const [messageId, receipts] of app.heldReceipts) {
      for (const receipt of receipts) receiptNote(messageId, receipt);
    }
    app.heldReceipts.clear();
  }

  onReceipt(frame) {
    for (const receipt of frame.receipts) {
      const messageId = receipt.message_id.toString();
      const record = app.sent.get(messageId);
      if (record) {
        applyReceipt(record, receipt);
      } else if (this.pending.size > 0) {
        if (!app.heldReceipts.has(messageId)) app.heldReceipts.set(messageId, []);
        app.heldReceipts.get(messageId).push(receipt);
      } else {
        receiptNote(messageId, receipt);
      }
    }
  }

  onError(frame) {
    const fatal = codeIsFatal(frame.code);
    const reference = frame.reference.toString();
    const record = frame.reference !== 0n ? this.pending.get(reference) : undefined;
    if (record) {
      this.pending.delete(reference);
      failSend(record, frame);
      this.settleHeld();
      if (!fatal) return;
    }
    if (fatal) this.fatal = frame;
    let text = describeError(frame);
    if (frame.code === CODE.SESSION_REPLACED) {
      text += '. This page will not log in again by itself.';
    } else if (fatal) {
      text += '. The hub is closing the connection.';
    }
    showBanner('error', text, { code: frame.code });
  }

  confirm(id) {
    this.confirmQueue.push(id);
    if (this.confirmQueue.length >= CONFIRM_BATCH) this.flushConfirms();
    else if (this.confirmTimer === null) this.confirmTimer = setTimeout(() => this.flushConfirms(), CONFIRM_DELAY_MS);
  }

  clearConfirmTimer() {
    if (this.confirmTimer !== null) {
      clearTimeout(this.confirmTimer);
      this.confirmTimer = null;
    }
  }

  flushConfirms() {
    this.clearConfirmTimer();
    const ids = this.confirmQueue.splice(0);
    if (ids.length === 0 || !this.isOpen()) return;
    const perFrame = Math.max(1, Math.floor((this.maxFrame - 5) / 8));
    for (let at = 0; at < ids.length; at += perFrame) {
      this.trySend({ type: 'CONFIRM', ids: ids.slice(at, at + perFrame) });
    }
  }

  onClose(event) {
    if (this.ended) return;
    this.ended = true;
    this.clearConfirmTimer();
    this.confirmQueue = [];
    for (const record of this.pending.values()) {
      record.item.dataset.state = 'unacknowledged';
      record.summary.hidden = false;
      record.summary.textContent = 'no answer from the hub before the connection closed: it may or may not have been delivered';
    }
    this.pending.clear();
    this.settleHeld();
    // A session replaced by a newer one (Reconnect, a new login) is done.
    if (app.session !== this) return;
    app.session = null;
    if (this.closing === 'refused') return;
    if (this.closing === 'leave') {
      setConnection('disconnected', 'Not connected');
      showView(false);
      ui.loginNick.focus();
      return;
    }
    const how = event.code === 1000 || event.code === 1005 ? '' : ` (WebSocket close code ${event.code}${event.reason ? `: ${event.reason}` : ''})`;
    if (!this.registered) {
      // A reconnection that failed stays in the chat, with Reconnect.
      const again = this.credentials.reconnect === true;
      if (this.closing !== 'malformed') {
        const text = this.fatal
          ? `${ui.bannerText.textContent} The connection is closed.`
          : `Could not reach the hub: the connection closed before login${how}.`;
        showBanner('error', text, { code: this.fatal ? this.fatal.code : null, reconnect: again });
      }
      if (again) {
        setConnection('closed', 'Disconnected');
        ui.reconnect.hidden = false;
        ui.reconnect.focus();
      } else {
        setConnection('disconnected', 'Not connected');
        showView(false);
        ui.loginNick.focus();
      }
      return;
    }
    setConnection('closed', 'Disconnected');
    if (this.closing !== 'malformed') {
      const text = this.fatal ? `${describeError(this.fatal)}. The connection is closed.` : `The connection to the hub closed${how}.`;
      showBanner('error', text, { code: this.fatal ? this.fatal.code : null, reconnect: true });
    }
    ui.reconnect.hidden = false;
    note('error', 'disconnected');
    ui.reconnect.focus();
  }
}

function receiptNote(messageId, receipt) {
  note(
    'receipt',
    `received by ${visible(receipt.recipient)} ${when(Number(receipt.received_ms))} (your message ${messageId}, sent earlier)`,
  );
}

function failedToConnect(session, text) {
  if (app.session === session) app.session = null;
  showBanner('error', text);
  setConnection('disconnected', 'Not connected');
  showView(false);
}

function connect(credentials) {
  if (app.session !== null) {
    app.session.leave();
    app.session = null;
  }
  app.credentials = credentials;
  const session = new Session({ ...credentials });
  app.session = session;
  session.open();
}

// ---------------------------------------------------------------- sending

function sendLine(line) {
  const session = app.session;
  const parsed = parseInput(line, app.nick || '');
  if (parsed.kind !== 'error' && !ui.banner.hidden && ui.banner.dataset.kind === 'input') hideBanner();
  switch (parsed.kind) {
    case 'nothing':
      return true;
    case 'help':
      for (const text of HELP) note('info', text);
      return true;
    case 'error':
      showBanner('input', parsed.message);
      return false;
    case 'quit':
      if (session) session.leave();
      else showView(false);
      return true;
    default:
      break;
  }
  if (session === null || !session.registered || !session.isOpen()) {
    showBanner('error', 'Not connected: press Reconnect, or log in again.', { reconnect: app.credentials !== null });
    return false;
  }
  if (parsed.kind === 'who') {
    session.awaitingWho = true;
    if (!session.trySend({ type: 'WHO' })) return false;
    return true;
  }
  const id = session.nextId;
  const frame = { type: 'SEND', id, to: parsed.to, text: parsed.text };
  try {
    session.send(frame);
  } catch (error) {
    showBanner('error', `Not sent: ${error.message}.`);
    return false;
  }
  session.nextId += 1n;
  const ts = Date.now();
  const item = messageItem({
    direction: 'out',
    sender: app.nick,
    to: parsed.to,
    text: parsed.text,
    ts,
    id: null,
    stored: false,
  });
  item.dataset.state = 'pending';
  const summary = el('p', { className: 'summary', 'data-testid': 'send-summary', text: 'sending…' });
  const outcomes = el('ul', { className: 'outcomes', 'aria-label': 'What became of it' });
  item.append(summary, outcomes);
  const record = { clientId: id, messageId: null, to: parsed.to, text: parsed.text, item, summary, outcomes, byRecipient: new Map() };
  session.pending.set(id.toString(), record);
  appendToLog(item);
  ui.log.scrollTop = ui.log.scrollHeight;
  return true;
}

// ---------------------------------------------------------------- wiring

function readLogin(mode) {
  const nick = ui.loginNick.value.trim();
  const password = ui.loginPassword.value;
  if (nick.length === 0) {
    showBanner('error', 'Enter a nickname.');
    ui.loginNick.focus();
    return null;
  }
  if (utf8Length(nick) > 255) {
    showBanner('error', 'That nickname is too long.');
    ui.loginNick.focus();
    return null;
  }
  if (mode === 'guest') return { nick, password: null, create: false };
  if (password.length === 0) {
    showBanner('error', mode === 'create' ? 'Choose a password for the account.' : 'Enter the password, or join as a guest.');
    ui.loginPassword.focus();
    return null;
  }
  const bytes = utf8Length(password);
  if (mode === 'create' && (bytes < 8 || bytes > 1024)) {
    showBanner('error', 'A password is 8 to 1024 bytes.');
    ui.loginPassword.focus();
    return null;
  }
  return { nick, password, create: mode === 'create' };
}

function init() {
  ui = findUi();
  setConnection('disconnected', 'Not connected');
  hideBanner();
  showView(false);

  // Enter in a field of the form submits with the first button (guest); it
  // means "log in" when a password is typed.
  let implicit = false;
  ui.loginForm.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && event.target instanceof HTMLInputElement) {
      implicit = true;
      setTimeout(() => {
        implicit = false;
      }, 0);
    }
  });
  ui.loginForm.addEventListener('submit', (event) => {
    event.preventDefault();
    let mode = event.submitter && event.submitter.value ? event.submitter.value : 'guest';
    if (implicit) mode = ui.loginPassword.value.length > 0 ? 'account' : 'guest';
    implicit = false;
    const credentials = readLogin(mode);
    if (credentials === null) return;
    hideBanner();
    connect(credentials);
  });

  ui.sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (sendLine(ui.input.value)) ui.input.value = '';
    ui.input.focus();
  });

  ui.reconnect.addEventListener('click', () => {
    if (app.credentials === null) {
      showView(false);
      return;
    }
    hideBanner();
    connect({ ...app.credentials, create: false, reconnect: true });
  });
  ui.bannerDismiss.addEventListener('click', () => {
    hideBanner();
    (ui.chatView.hidden ? ui.loginNick : ui.input).focus();
  });

  ui.leave.addEventListener('click', () => {
    if (app.session) app.session.leave();
    else {
      setConnection('disconnected', 'Not connected');
      showView(false);
      ui.loginNick.focus();
    }
    hideBanner();
  });

  ui.usersToggle.addEventListener('click', () => {
    const open = !ui.usersPanel.classList.contains('open');
    ui.usersPanel.classList.toggle('open', open);
    ui.usersToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    ui.usersToggle.textContent = open ? 'Hide' : 'Show';
  });

  ui.usersBody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-nick]');
    if (!button) return;
    const nick = button.dataset.nick;
    const value = ui.input.value;
    const already = new RegExp(`(^|\\s)@${nick.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[\\s:,]|$)`, 'i');
    if (!already.test(value)) ui.input.value = `@${nick} ${value}`;
    ui.input.focus();
    ui.input.setSelectionRange(ui.input.value.length, ui.input.value.length);
  });

  window.addEventListener('pagehide', () => {
    if (app.session) app.session.leave();
  });

  ui.loginNick.focus();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
