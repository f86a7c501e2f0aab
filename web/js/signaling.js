// @ts-check
/**
 * signaling.js — the WebSocket client for huddle's signaling protocol v1
 * (docs/protocol.md). It owns the socket: connecting, joining, relaying
 * offers/answers/candidates, and surviving a lost socket by reconnecting with
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
 * - `ended`       detail: `{reason}` — the membership is over without the
 *                 person asking: `replaced` (4000), `protocol`
 *                 (1003/1008/1009), or a join error code when a resume failed.
 */

/** Close codes after which reconnecting would only loop. */
const PROTOCOL_CLOSE = new Set([1003, 1008, 1009]);
/** The server closes a connection taken over by a resume with this code. */
const CLOSE_REPLACED = 4000;
/** Error codes that answer a `join`. */
const JOIN_ERRORS = new Set(['invalid-name', 'invalid-room', 'name-taken', 'room-full', 'bad-message', 'rate-limited']);

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;
const CONNECT_TIMEOUT_MS = 8000;
const JOIN_TIMEOUT_MS = 10000;
/** How long a leave over a fresh socket may take (the socket was down). */
const LEAVE_TIMEOUT_MS = 5000;
/** Relayed messages kept while the socket is down (offers/answers/candidates). */
const OUTBOX_MAX = 500;

/**
 * @typedef {{type:'joined', room:string, name:string, peers:string[],
 *   iceServers:RTCIceServer[], token:string, resumed?:boolean, rejoined?:boolean}} JoinedMessage
 * @typedef {{room:string, name:string, token:string}} Session
 */

/** An error from the server or the transport, with a protocol error code. */
export class SignalingError extends Error {
  /**
   * @param {string} code `name-taken`, `room-full`, …, or a local one:
   *   `unreachable`, `timeout`, `protocol`, `replaced`.
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
  /** @type {{resolve:(m:JoinedMessage)=>void, reject:(e:Error)=>void, timer:number, room:string, name:string} | null} */
  #pendingJoin = null;
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
   * `invalid-room`, …) or `unreachable` / `timeout`.
   * @param {string} room
   * @param {string} name
   * @returns {Promise<JoinedMessage>}
   */
  async join(room, name) {
    if (this.#pendingJoin) this.#pendingJoin.reject(new SignalingError('superseded'));
    this.#pendingJoin = null;
    clearTimeout(this.#retryTimer);
    await this.connect();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pendingJoin && this.#pendingJoin.timer === timer) this.#pendingJoin = null;
        reject(new SignalingError('timeout'));
      }, JOIN_TIMEOUT_MS);
      this.#pendingJoin = { resolve, reject, timer, room, name };
      this.#sendNow({ type: 'join', room, name });
    });
  }

  /** Leaves the current room (if any). The socket stays open for a later join. */
  leave() {
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
      ws.send(JSON.stringify({ type: 'join', room: session.room, name: session.name, token: session.token }));
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
      case 'peer-joined':
      case 'peer-left':
      case 'offer':
      case 'answer':
      case 'candidate':
        if (this.#session) this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
        break;
      default:
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
    this.#session = { room: msg.room, name: msg.name, token: msg.token };
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

  /** @param {{code:string, message:string}} msg */
  #onError(msg) {
    const code = String(msg.code || '');
    if (this.#resuming && JOIN_ERRORS.has(code) && code !== 'rate-limited') {
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

  /** @param {string} reason */
  #end(reason) {
    const hadSession = !!this.#session;
    this.#session = null;
    this.#outbox = [];
    clearTimeout(this.#retryTimer);
    this.#setState('closed');
    if (hadSession) this.dispatchEvent(new CustomEvent('ended', { detail: { reason } }));
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
    this.#sendNow({ type: 'join', room: session.room, name: session.name, token: session.token });
  }

  /** The network came back: do not wait for the next backoff step. */
  #onOnline() {
    if (!this.#session) return;
    if (this.#state === 'reconnecting' && !this.#resuming) {
      this.#backoff = BACKOFF_FIRST_MS;
      clearTimeout(this.#retryTimer);
      this.#resume();
    } else if (this.#state === 'open') {
      // The old socket may be dead without the browser knowing yet (no FIN
      // seen while offline). A resume on a fresh socket is silent for the
      // others, so take over now rather than wait for a TCP timeout.
      this.#resume();
    }
  }
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

/**
 * A fresh room name that is easy to read out: `abc-defg-hij`.
 * @returns {string}
 */
export function randomRoomName() {
  const letters = 'abcdefghijkmnopqrstuvwxyz';
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  const s = [...bytes].map((b) => letters[b % letters.length]).join('');
  return `${s.slice(0, 3)}-${s.slice(3, 7)}-${s.slice(7)}`;
}
