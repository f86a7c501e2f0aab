// @ts-check
/**
 * signaling.js — the WebSocket client for huddle's signaling protocol v1
 * and its v1.1 room access (docs/protocol.md). It owns the socket:
 * connecting, joining (with a room password and an operator `access` token
 * when there are), waiting in a lobby, relaying offers/answers/candidates,
 * the host's commands, and surviving a lost socket by reconnecting with
 * backoff and resuming the membership with its token. It knows nothing of
 * WebRTC or the DOM.
 *
 * Events (all `CustomEvent`, payload in `detail`):
 * - `joined`      detail: the server's `joined` message; `detail.rejoined` is
 *                 true when a resume turned into a fresh join (the member had
 *                 been dropped): every peer connection must be rebuilt.
 * - `resumed`     detail: the `joined` message of a successful resume.
 * - `peer-joined`, `peer-left`, `offer`, `answer`, `candidate`: the server's
 *                 message as is.
 * - `left`        detail: the server's `left` message.
 * - `error`       detail: `{code, message}` — an `error` message not tied to
 *                 a pending join (those reject the `join()` promise instead).
 * - `status`      detail: `{state}` — one of `idle`, `connecting`, `open`,
 *                 `reconnecting`, `closed`.
 * - `ended`       detail: `{reason, by?}` — the membership (or the wait in a
 *                 lobby) is over without the person asking: `replaced`
 *                 (4000), `protocol` (1003/1008/1009), `removed` (the host
 *                 BY removed us; close 4001, never followed by a reconnect),
 *                 or a join error code when a resume failed.
 * - `waiting`     detail: the server's `waiting` message: the join waits in
 *                 the room's lobby (any membership we had has ended). The
 *                 pending `join()` settles when the host admits (`joined`)
 *                 or denies (`denied`), or on `stopWaiting()`.
 * - `host`, `room-settings`, `knock`, `knock-gone`, `ask-mute`: the
 *                 server's v1.1 message as is (only while in a room).
 */

/** Close codes after which reconnecting would only loop. */
const PROTOCOL_CLOSE = new Set([1003, 1008, 1009]);
/** The server closes a connection taken over by a resume with this code. */
const CLOSE_REPLACED = 4000;
/** The server closes the socket of a member the host removed with this code. */
const CLOSE_REMOVED = 4001;
/** Error codes that answer a `join` (v1, then v1.1 room access). */
const JOIN_ERRORS = new Set([
  'invalid-name', 'invalid-room', 'name-taken', 'room-full', 'bad-message', 'rate-limited',
  'password-required', 'wrong-password', 'denied', 'unauthorized', 'unavailable',
]);
/** Join errors after which a resume is worth trying again later. */
const RETRY_ERRORS = new Set(['rate-limited', 'unavailable']);
/** v1.1 messages passed on as events while in a room. */
const ROOM_EVENTS = new Set(['host', 'room-settings', 'knock', 'knock-gone', 'ask-mute']);

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;
const CONNECT_TIMEOUT_MS = 8000;
const JOIN_TIMEOUT_MS = 10000;
/** How long a leave over a fresh socket may take (the socket was down). */
const LEAVE_TIMEOUT_MS = 5000;
/** refresh() calls this close together start one resume, not several. */
const REFRESH_GAP_MS = 1000;
/** Relayed messages kept while the socket is down (offers/answers/candidates). */
const OUTBOX_MAX = 500;

/**
 * @typedef {{type:'joined', room:string, name:string, peers:string[],
 *   iceServers:RTCIceServer[], token:string, resumed?:boolean, rejoined?:boolean,
 *   host?:string, locked?:boolean, protected?:boolean}} JoinedMessage
 * @typedef {{password?:string, access?:string}} JoinOptions the room's
 *   password and the operator token, sent with the join when given
 * @typedef {{room:string, name:string, token:string} & JoinOptions} Session
 *   kept for resume joins, which carry `access` and the password again: a
 *   resume in time needs neither, but one after the grace period is a fresh
 *   join that needs both
 */

/** An error from the server or the transport, with a protocol error code. */
export class SignalingError extends Error {
  /**
   * @param {string} code `name-taken`, `room-full`, …, or a local one:
   *   `unreachable`, `timeout`, `protocol`, `replaced`, `superseded` (another
   *   join replaced this one), `stopped` (the person stopped waiting).
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message || code);
    this.name = 'SignalingError';
    this.code = code;
  }
}

/** @returns {string} `ws(s)://<this host>/ws` */
export function defaultSocketUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws`;
}

export class Client extends EventTarget {
  /** @type {WebSocket | null} */
  #ws = null;
  /** @type {'idle'|'connecting'|'open'|'reconnecting'|'closed'} */
  #state = 'idle';
  /** @type {Session | null} the current membership, if any */
  #session = null;
  /** @type {({resolve:(m:JoinedMessage)=>void, reject:(e:Error)=>void, timer:number, room:string, name:string} & JoinOptions) | null} */
  #pendingJoin = null;
  /** @type {({room:string, name:string} & JoinOptions) | null} the lobby we wait in */
  #waiting = null;
  /** @type {Promise<void> | null} */
  #connecting = null;
  /** @type {object[]} relayed messages held while the socket is down */
  #outbox = [];
  #backoff = BACKOFF_FIRST_MS;
  /** @type {number | undefined} */
  #retryTimer;
  /** True while a resume `join` is in flight on a fresh socket. */
  #resuming = false;
  /** Sockets whose messages are ignored (closed by us, or superseded and the
   * newer one has joined). */
  #retired = new WeakSet();
  /** performance.now() of the last refresh() that started a resume */
  #refreshedAt = -Infinity;
  /** @type {WebSocket | null} a socket being replaced by a resume: its
   * messages still count until the resume's `joined` arrives. */
  #previous = null;

  /** @param {string} [url] the socket URL; defaults to this host's `/ws` */
  constructor(url) {
    super();
    this.url = url || defaultSocketUrl();
    addEventListener('online', () => this.#onOnline());
  }

  /** @returns {'idle'|'connecting'|'open'|'reconnecting'|'closed'} */
  get state() {
    return this.#state;
  }

  /** @returns {Session | null} */
  get session() {
    return this.#session;
  }

  /** @returns {{room:string, name:string} | null} the lobby we wait in, if any */
  get waiting() {
    return this.#waiting ? { room: this.#waiting.room, name: this.#waiting.name } : null;
  }

  /**
   * Opens the socket if it is not open. Resolves once open; rejects with
   * `SignalingError('unreachable')` if it cannot be opened.
   * @returns {Promise<void>}
   */
  connect() {
    if (this.#ws && this.#ws.readyState === WebSocket.OPEN) return Promise.resolve();
    if (this.#connecting) return this.#connecting;
    this.#setState(this.#session ? 'reconnecting' : 'connecting');
    const p = new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        reject(new SignalingError('unreachable', String(e)));
        return;
      }
      const timer = setTimeout(() => {
        if (ws.readyState !== WebSocket.OPEN) {
          this.#retire(ws);
          try { ws.close(); } catch { /* ignore */ }
          reject(new SignalingError('unreachable', 'connect timeout'));
        }
      }, CONNECT_TIMEOUT_MS);
      ws.addEventListener('open', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      ws.addEventListener('close', (ev) => {
        clearTimeout(timer);
        reject(new SignalingError('unreachable', `closed ${ev.code}`));
        this.#onClose(ws, ev);
      });
      ws.addEventListener('message', (ev) => this.#onMessage(ws, ev));
      this.#ws = ws;
    });
    this.#connecting = p;
    p.then(
      () => {
        if (this.#connecting === p) this.#connecting = null;
        if (!this.#session) this.#setState('open');
      },
      () => {
        if (this.#connecting === p) this.#connecting = null;
      },
    );
    return p;
  }

  /**
   * Joins ROOM as NAME (a room change when already in a room). Resolves with
   * the `joined` message; rejects with a `SignalingError` whose `code` is the
   * server's error code (`name-taken`, `room-full`, `invalid-name`,
   * `invalid-room`, `password-required`, `wrong-password`, `denied`,
   * `unauthorized`, `unavailable`, …) or `unreachable` / `timeout` /
   * `stopped`. A join that gets `waiting` stays pending (no timeout) until
   * the host decides or `stopWaiting()`.
   * @param {string} room
   * @param {string} name
   * @param {JoinOptions} [opts]
   * @returns {Promise<JoinedMessage>}
   */
  async join(room, name, opts = {}) {
    if (this.#pendingJoin) this.#pendingJoin.reject(new SignalingError('superseded'));
    this.#pendingJoin = null;
    this.#waiting = null;
    clearTimeout(this.#retryTimer);
    await this.connect();
    const extra = joinFields(opts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pendingJoin && this.#pendingJoin.timer === timer) this.#pendingJoin = null;
        reject(new SignalingError('timeout'));
      }, JOIN_TIMEOUT_MS);
      this.#pendingJoin = { resolve, reject, timer, room, name, ...extra };
      this.#sendNow({ type: 'join', room, name, ...extra });
    });
  }

  /**
   * Gives up waiting in a lobby: sends `leave` (the server answers `left`
   * and tells the host `knock-gone`); the pending join rejects with
   * `stopped`.
   */
  stopWaiting() {
    if (!this.#waiting) return;
    this.#waiting = null;
    this.#sendNow({ type: 'leave' });
    const pending = this.#pendingJoin;
    this.#pendingJoin = null;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(new SignalingError('stopped'));
    }
  }

  /**
   * Sends a v1.1 host command (`room-settings`, `admit`, `deny`, `remove`,
   * `ask-mute`). The server answers refusals with an `error` event
   * (`not-host`, `unknown-peer`, `room-full`, …). Returns false when the
   * socket is not open or we are not in a room (nothing was sent).
   * @param {{type:'room-settings', password?:string|null, locked?:boolean}
   *   | {type:'admit'|'deny'|'remove'|'ask-mute', name:string}} msg
   * @returns {boolean}
   */
  command(msg) {
    if (!this.#session || this.#resuming || this.#state !== 'open') return false;
    return this.#sendNow(msg);
  }

  /** Leaves the current room (if any). The socket stays open for a later join. */
  leave() {
    if (this.#waiting) this.stopWaiting();
    this.#resuming = false;
    clearTimeout(this.#retryTimer);
    this.#outbox = [];
    const session = this.#session;
    if (!session) return;
    this.#session = null;
    if (!this.#sendNow({ type: 'leave' })) this.#leaveOverFreshSocket(session);
    if (this.#state === 'reconnecting') this.#setState('idle');
  }

  /**
   * Our socket is down, so the server still holds our place (its grace
   * period) and the others still show our tile. Take the membership over on
   * a short-lived socket and leave, so they see us go now.
   * @param {Session} session
   */
  #leaveOverFreshSocket(session) {
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      return;
    }
    const done = () => {
      clearTimeout(timer);
      try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    };
    const timer = setTimeout(done, LEAVE_TIMEOUT_MS);
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({ type: 'join', room: session.room, name: session.name, token: session.token, ...joinFields(session) }));
    });
    ws.addEventListener('message', (ev) => {
      let msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (msg && msg.type === 'joined') ws.send(JSON.stringify({ type: 'leave' }));
      else if (msg && (msg.type === 'left' || msg.type === 'error')) done();
    });
    ws.addEventListener('close', () => clearTimeout(timer));
  }

  /**
   * Relays an offer, answer or candidate to member TO. Held (in order) while
   * the socket is down and sent after a successful resume.
   * @param {'offer'|'answer'|'candidate'} type
   * @param {string} to
   * @param {{sdp?:string, candidate?:RTCIceCandidateInit|null}} payload
   */
  relay(type, to, payload) {
    const msg = { type, to, ...payload };
    if (this.#state === 'open' && !this.#resuming && this.#ws && this.#ws.readyState === WebSocket.OPEN) {
      this.#sendNow(msg);
    } else if (this.#session) {
      if (this.#outbox.length >= OUTBOX_MAX) this.#outbox.shift();
      this.#outbox.push(msg);
    }
  }

  /** Leaves and closes the socket for good (page unload). */
  close() {
    this.leave();
    clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      this.#retire(ws);
      try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
    this.#setState('closed');
  }

  /** @param {object} msg */
  #sendNow(msg) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** @param {WebSocket} ws */
  #retire(ws) {
    this.#retired.add(ws);
  }

  /** @param {'idle'|'connecting'|'open'|'reconnecting'|'closed'} state */
  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.dispatchEvent(new CustomEvent('status', { detail: { state } }));
  }

  /**
   * @param {WebSocket} ws
   * @param {MessageEvent} ev
   */
  #onMessage(ws, ev) {
    if (this.#retired.has(ws)) return;
    if (typeof ev.data !== 'string') return;
    /** @type {any} */
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    switch (msg.type) {
      case 'joined':
        this.#onJoined(msg);
        break;
      case 'error':
        this.#onError(msg);
        break;
      case 'left':
        this.dispatchEvent(new CustomEvent('left', { detail: msg }));
        break;
      case 'waiting':
        this.#onWaiting(msg);
        break;
      case 'removed':
        // The close (4001) follows; whatever comes first ends the call for
        // good: the token no longer resumes, so there is nothing to retry.
        this.#end('removed', String(msg.by || ''));
        break;
      case 'peer-joined':
      case 'peer-left':
      case 'offer':
      case 'answer':
      case 'candidate':
        if (this.#session) this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
        break;
      default:
        if (ROOM_EVENTS.has(msg.type)) {
          if (this.#session) this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
        }
        // Fields and types may be added to the protocol: ignore the unknown.
        break;
    }
  }

  /** @param {JoinedMessage} msg */
  #onJoined(msg) {
    if (this.#previous) {
      this.#retire(this.#previous);
      this.#previous = null;
    }
    const wasResuming = this.#resuming;
    this.#resuming = false;
    // What this membership's resumes must carry again: from the join that
    // got us in (pending, or the one that waited in the lobby), else the
    // session being resumed.
    const from = this.#pendingJoin || this.#waiting || this.#session || {};
    this.#waiting = null;
    this.#session = { room: msg.room, name: msg.name, token: msg.token, ...joinFields(from) };
    this.#backoff = BACKOFF_FIRST_MS;
    const pending = this.#pendingJoin;
    this.#pendingJoin = null;
    if (pending) clearTimeout(pending.timer);
    this.#setState('open');
    if (wasResuming && msg.resumed) {
      const held = this.#outbox;
      this.#outbox = [];
      for (const m of held) this.#sendNow(m);
      this.dispatchEvent(new CustomEvent('resumed', { detail: msg }));
      return;
    }
    this.#outbox = [];
    if (wasResuming) msg.rejoined = true;
    this.dispatchEvent(new CustomEvent('joined', { detail: msg }));
    if (pending) pending.resolve(msg);
  }

  /**
   * The join waits in the lobby. A room change into a locked room has left
   * the old room on the server, and a resume after the grace period can
   * land here too: either way the old membership is over.
   * @param {{room:string}} msg
   */
  #onWaiting(msg) {
    const pending = this.#pendingJoin;
    const session = this.#session;
    if (pending) {
      // No timeout while waiting: the host may take a while.
      clearTimeout(pending.timer);
      pending.timer = 0;
    }
    const from = pending || session;
    if (!from) return;
    this.#waiting = { room: String(msg.room || from.room), name: from.name, ...joinFields(from) };
    this.#resuming = false;
    this.#session = null;
    this.#outbox = [];
    this.#setState('open');
    this.dispatchEvent(new CustomEvent('waiting', { detail: msg }));
  }

  /** @param {{code:string, message:string}} msg */
  #onError(msg) {
    const code = String(msg.code || '');
    if (this.#resuming && RETRY_ERRORS.has(code)) {
      // The server cannot take us right now; our place is still held.
      this.#resuming = false;
      this.#setState('reconnecting');
      this.#scheduleReconnect();
      return;
    }
    if (this.#waiting && !this.#pendingJoin && JOIN_ERRORS.has(code)) {
      // A wait that no join() call is behind (a resume that landed in the
      // lobby) ends like a failed resume.
      this.#waiting = null;
      this.dispatchEvent(new CustomEvent('ended', { detail: { reason: code } }));
      return;
    }
    if (this.#resuming && JOIN_ERRORS.has(code)) {
      // The resume was refused: the membership is gone for good.
      this.#resuming = false;
      this.#session = null;
      this.#outbox = [];
      this.#setState('open');
      this.dispatchEvent(new CustomEvent('ended', { detail: { reason: code } }));
      return;
    }
    if (this.#pendingJoin && JOIN_ERRORS.has(code)) {
      const pending = this.#pendingJoin;
      this.#pendingJoin = null;
      this.#waiting = null;
      clearTimeout(pending.timer);
      pending.reject(new SignalingError(code, msg.message));
      return;
    }
    this.dispatchEvent(new CustomEvent('error', { detail: { code, message: String(msg.message || '') } }));
  }

  /**
   * @param {WebSocket} ws
   * @param {CloseEvent} ev
   */
  #onClose(ws, ev) {
    if (this.#retired.has(ws) || ws !== this.#ws) return;
    console.info(`huddle: signaling closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
    this.#ws = null;
    this.#resuming = false;
    // A lobby does not survive its socket: the server forgets the waiter.
    this.#waiting = null;
    if (this.#pendingJoin && !this.#session) {
      const pending = this.#pendingJoin;
      this.#pendingJoin = null;
      clearTimeout(pending.timer);
      pending.reject(new SignalingError(PROTOCOL_CLOSE.has(ev.code) ? 'protocol' : 'unreachable'));
    }
    if (ev.code === CLOSE_REPLACED) {
      this.#end('replaced');
      return;
    }
    if (ev.code === CLOSE_REMOVED) {
      // Usually `removed` came first and the call is already over; never
      // reconnect after this close.
      this.#end('removed');
      return;
    }
    if (PROTOCOL_CLOSE.has(ev.code)) {
      this.#end('protocol');
      return;
    }
    if (this.#session) {
      this.#setState('reconnecting');
      this.#scheduleReconnect();
    } else {
      this.#setState('idle');
    }
  }

  /**
   * @param {string} reason
   * @param {string} [by] who removed us (reason `removed`)
   */
  #end(reason, by) {
    const hadSession = !!this.#session;
    this.#session = null;
    this.#outbox = [];
    this.#resuming = false;
    clearTimeout(this.#retryTimer);
    this.#setState('closed');
    if (hadSession) this.dispatchEvent(new CustomEvent('ended', { detail: by === undefined ? { reason } : { reason, by } }));
  }

  #scheduleReconnect() {
    clearTimeout(this.#retryTimer);
    const delay = this.#backoff * (0.75 + Math.random() * 0.5);
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#retryTimer = setTimeout(() => this.#resume(), delay);
  }

  /** Opens a fresh socket and sends `join` with the token. */
  async #resume() {
    const session = this.#session;
    if (!session) return;
    // Replacing a socket that still looks open is allowed: the server takes
    // the member over and closes the old one with 4000, which we ignore
    // (#onClose only listens to the current socket). What the old socket
    // still delivers before the resume's `joined` is processed.
    if (this.#ws) {
      if (this.#ws.readyState === WebSocket.OPEN) {
        this.#previous = this.#ws;
      } else {
        this.#retire(this.#ws);
        try { this.#ws.close(); } catch { /* ignore */ }
      }
      this.#ws = null;
    }
    this.#connecting = null;
    try {
      await this.connect();
    } catch {
      if (this.#session === session) this.#scheduleReconnect();
      return;
    }
    if (this.#session !== session) return;
    this.#resuming = true;
    this.#setState('reconnecting');
    this.#sendNow({ type: 'join', room: session.room, name: session.name, token: session.token, ...joinFields(session) });
  }

  /** The network came back: do not wait for the next backoff step. */
  #onOnline() {
    this.refresh();
  }

  /**
   * Our network changed (it came back, or the address moved): the socket
   * may be dead without the browser knowing (no FIN seen, a TCP timeout is
   * minutes away). A resume on a fresh socket is silent for the others, so
   * take over now; while reconnecting, try now rather than at the next
   * backoff step (a connect still pending then is dropped: it may hang on
   * the old network). Nothing happens outside a room, while a resume `join`
   * is in flight, or within REFRESH_GAP_MS of the last refresh (several
   * signs of one change come together).
   */
  refresh() {
    if (!this.#session || this.#resuming) return;
    if (this.#state !== 'open' && this.#state !== 'reconnecting') return;
    const now = performance.now();
    if (this.#connecting && now - this.#refreshedAt < REFRESH_GAP_MS) return;
    this.#refreshedAt = now;
    this.#backoff = BACKOFF_FIRST_MS;
    clearTimeout(this.#retryTimer);
    this.#resume();
  }
}

/**
 * The optional fields of a `join`: `password` and `access` when set.
 * @param {JoinOptions} opts
 * @returns {JoinOptions}
 */
function joinFields(opts) {
  /** @type {JoinOptions} */
  const out = {};
  if (typeof opts.password === 'string' && opts.password !== '') out.password = opts.password;
  if (typeof opts.access === 'string' && opts.access !== '') out.access = opts.access;
  return out;
}

/**
 * Checks a name as the server will (protocol "Names"): trimmed, 1–32
 * characters, no control or format (zero-width, bidi) characters. The server
 * also refuses look-alikes of names already in the room.
 * @param {string} raw
 * @returns {{ok:true, value:string} | {ok:false, error:'empty'|'long'|'invalid'}}
 */
export function checkName(raw) {
  const value = String(raw).trim();
  const len = [...value].length;
  if (len === 0) return { ok: false, error: 'empty' };
  if (len > 32) return { ok: false, error: 'long' };
  // Control and invisible format characters (zero-width, bidi controls).
  if (/[\p{Cc}\p{Cf}]/u.test(value)) return { ok: false, error: 'invalid' };
  return { ok: true, value };
}

/**
 * Checks a room name as the server will (protocol "Rooms"): 1–64 letters,
 * digits, `-`, `_` or `.`, and not `.` or `..`. Surrounding spaces are
 * dropped first.
 * @param {string} raw
 * @returns {{ok:true, value:string} | {ok:false, error:'empty'|'long'|'invalid'}}
 */
export function checkRoom(raw) {
  const value = String(raw).trim();
  const len = [...value].length;
  if (len === 0) return { ok: false, error: 'empty' };
  if (len > 64) return { ok: false, error: 'long' };
  if (!/^[\p{L}\p{Nd}_.-]+$/u.test(value) || value === '.' || value === '..') return { ok: false, error: 'invalid' };
  return { ok: true, value };
}
