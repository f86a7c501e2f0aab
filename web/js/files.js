// @ts-check
/**
 * files.js — files sent peer to peer, to everyone in the call. The bytes
 * never pass through the server: each recipient gets the file over a data
 * channel of its own (`file:ID`) on the WebRTC connection it already has
 * with the sender; the offer, the answer and the end of a transfer travel as
 * JSON messages on `sendDataChannel` (see docs/protocol.md):
 *
 *   sender → each member   {"type":"file-offer","id":ID,"name":NAME,"size":BYTES}
 *   member → sender        {"type":"file-accept","id":ID}
 *                          {"type":"file-decline","id":ID,"reason"?:"too-large"|"busy"}
 *   sender opens the data channel "file:ID" and writes the bytes in order,
 *   as binary messages of at most 64 KiB, keeping at most HIGH_WATER bytes
 *   buffered (backpressure through `bufferedAmountLowThreshold`)
 *   member → sender        {"type":"file-done","id":ID} once it holds SIZE bytes
 *   either side            {"type":"file-cancel","id":ID}
 *
 * A recipient trusts nothing of an offer: the name is only shown (cut and
 * cleaned) and given to the download, the size bounds what it will take
 * (more bytes than offered end the transfer), files above the page's limit
 * are declined at once, and one member may have at most MAX_OPEN_OFFERS
 * transfers to us open. What arrives is kept as a Blob of type
 * `application/octet-stream` whatever the sender says, so opening it can
 * never run as a page of ours.
 *
 * The state machine is DOM-free (it runs under Node for the unit tests,
 * tests/e2e/files-unit.test.mjs): the room hands it each member's `FileLink`.
 *
 * Events (all with detail `{transfer}`):
 * - `added`    a new transfer (ours, or an offer to us) to show.
 * - `update`   its state or progress changed (progress at most every
 *              PROGRESS_MS).
 */

/** Default for the page's `maxFileSize` (the server's `--max-file-size`). */
export const DEFAULT_MAX_FILE_SIZE = 1024 ** 3;
/** Label prefix of the data channels that carry a file's bytes. */
export const FILE_CHANNEL_PREFIX = 'file:';
/** Largest binary message written (lowered to the connection's maxMessageSize). */
export const CHUNK_BYTES = 64 * 1024;
/** How much of the file is read from disk at once. */
const READ_BYTES = 1024 * 1024;
/** Bytes buffered in a file channel above which the sender waits … */
export const HIGH_WATER = 4 * 1024 * 1024;
/** … until the buffer is down to this (`bufferedAmountLowThreshold`). */
export const LOW_WATER = 1024 * 1024;
/** Received chunks are folded into one Blob every this many bytes, so the
 * browser may keep a large file on disk rather than in thousands of buffers. */
const FOLD_BYTES = 16 * 1024 * 1024;
/** Longest file name shown or used for a download, in characters. */
export const MAX_FILE_NAME = 255;
/** Transfers one member may have open towards us (offered or receiving);
 * more offers are declined with reason `busy`. */
export const MAX_OPEN_OFFERS = 10;
/** How long after accepting we wait for the sender's data channel. */
export const CHANNEL_WAIT_MS = 30_000;
/** Transfers kept (and shown) at most; the oldest finished ones go first. */
export const MAX_KEPT = 500;
/** A file channel that closes early is judged this long after: a cancel or
 * `file-done` sent just before the close travels on another channel and may
 * come second. */
const CLOSE_GRACE_MS = 1000;
const PROGRESS_MS = 200;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * What the file module needs of one member's connection (PeerLink gives it).
 * @typedef {object} FileLink
 * @property {(msg: object) => void} send a message on `sendDataChannel`
 * @property {(label: string) => RTCDataChannel} openChannel a new ordered, reliable channel
 * @property {() => number} maxMessageSize 0 when unknown
 */

/**
 * @typedef {'offered'|'sending'|'receiving'|'done'|'declined'|'cancelled'|'failed'} FileState
 * Why a transfer ended other than `done`:
 * - `declined`: `declined` (by the person), `too-large`, `busy`;
 * - `cancelled`: `by-us`, `by-them`;
 * - `failed`: `left` (the member left the call), `ended` (we left it),
 *   `lost` (the connection dropped), `unreadable` (we could not read our file), `bad-data` (the
 *   sender sent more than it offered, or not bytes), `timeout`.
 * @typedef {'declined'|'too-large'|'busy'|'by-us'|'by-them'|'left'|'ended'|'lost'|'unreadable'|'bad-data'|'timeout'|''} FileReason
 */

/**
 * One recipient of a file we send.
 * @typedef {object} Leg
 * @property {string} member
 * @property {FileState} state
 * @property {FileReason} reason
 * @property {number} bytes bytes the recipient has (as far as we know)
 * @property {RTCDataChannel | null} channel
 */

/**
 * @typedef {object} Outgoing
 * @property {'out'} direction
 * @property {string} key local id (for the page); equals `id` for ours
 * @property {string} id
 * @property {string} name
 * @property {number} size
 * @property {Blob} file
 * @property {Map<string, Leg>} legs by member name
 * @property {number} sent when it was offered (ms since the epoch)
 */

/**
 * @typedef {object} Incoming
 * @property {'in'} direction
 * @property {string} key local id (for the page): unique even if two senders pick the same id
 * @property {string} id the sender's id
 * @property {string} from
 * @property {string} name
 * @property {number} size
 * @property {FileState} state
 * @property {FileReason} reason
 * @property {number} bytes received so far
 * @property {string | null} url an object URL of the file, once done
 * @property {Blob | null} blob the file, once done
 * @property {RTCDataChannel | null} channel
 * @property {number} sent when the offer arrived (ms since the epoch)
 */

/** @typedef {Outgoing | Incoming} Transfer */

const FINAL = new Set(['done', 'declined', 'cancelled', 'failed']);

/** @param {FileState} state */
export function isFinal(state) {
  return FINAL.has(state);
}

/**
 * A file name fit to show and to save: no path, no control or bidi-override
 * characters, at most MAX_FILE_NAME characters; "file" when nothing is left.
 * @param {unknown} name
 * @returns {string}
 */
export function cleanFileName(name) {
  let s = typeof name === 'string' ? name : '';
  s = s.slice(s.search(/[^/\\]*$/));
  // C0/C1 controls and the bidi embedding, override and isolate marks.
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '').trim();
  s = Array.from(s).slice(0, MAX_FILE_NAME).join('');
  return s && s !== '.' && s !== '..' ? s : 'file';
}

/** A random transfer id (works outside secure contexts, unlike randomUUID). */
function newId() {
  const b = new Uint8Array(9);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * The state of an outgoing transfer as a whole: sending while any recipient
 * still is (or has not answered), else done if anyone got it, else how the
 * first ended.
 * @param {Outgoing} t
 * @returns {FileState}
 */
export function overallState(t) {
  const legs = [...t.legs.values()];
  if (legs.some((l) => l.state === 'sending')) return 'sending';
  if (legs.some((l) => l.state === 'offered')) return 'offered';
  if (legs.some((l) => l.state === 'done')) return 'done';
  if (legs.some((l) => l.state === 'cancelled' && l.reason === 'by-us')) return 'cancelled';
  return legs[0]?.state ?? 'cancelled';
}

export class Files extends EventTarget {
  /** Largest file we send or accept, in bytes (the page's `maxFileSize`). */
  maxFileSize = DEFAULT_MAX_FILE_SIZE;
  /** @type {Map<string, Transfer>} by key, oldest first */
  transfers = new Map();
  /** @type {Map<string, FileLink>} */
  #links = new Map();
  /** @type {Map<string, number>} key → last progress event (performance.now()) */
  #lastProgress = new Map();
  #serial = 0;

  /** @param {{maxFileSize?: number}} [opts] */
  constructor(opts = {}) {
    super();
    if (opts.maxFileSize !== undefined) this.maxFileSize = opts.maxFileSize;
  }

  /**
   * A member joined the call (or its connection was made anew).
   * @param {string} member
   * @param {FileLink} link
   */
  attach(member, link) {
    this.#links.set(member, link);
  }

  /**
   * A member's connection is gone: what it was part of fails.
   * @param {string} member
   * @param {'left' | 'ended' | 'lost'} [reason]
   */
  detach(member, reason = 'left') {
    this.#links.delete(member);
    for (const t of this.transfers.values()) {
      if (t.direction === 'out') {
        const leg = t.legs.get(member);
        if (leg && !isFinal(leg.state)) this.#endLeg(t, leg, 'failed', reason, false);
      } else if (t.from === member && !isFinal(t.state)) {
        this.#endIncoming(t, 'failed', reason, false);
      }
    }
  }

  /**
   * Offers FILE to every member now in the call. Returns the transfer, or
   * an error: `empty-call` (no one to send to), `too-large`.
   * @param {Blob & {name?: string}} file
   * @returns {{transfer: Outgoing} | {error: 'empty-call' | 'too-large'}}
   */
  offer(file) {
    if (file.size > this.maxFileSize) return { error: 'too-large' };
    if (this.#links.size === 0) return { error: 'empty-call' };
    const id = newId();
    /** @type {Outgoing} */
    const t = {
      direction: 'out',
      key: id,
      id,
      name: cleanFileName(file.name),
      size: file.size,
      file,
      legs: new Map(),
      sent: Date.now(),
    };
    for (const [member, link] of this.#links) {
      t.legs.set(member, { member, state: 'offered', reason: '', bytes: 0, channel: null });
      link.send({ type: 'file-offer', id, name: t.name, size: t.size });
    }
    this.transfers.set(t.key, t);
    this.#emit('added', t);
    return { transfer: t };
  }

  /**
   * Takes an offer made to us.
   * @param {string} key
   */
  accept(key) {
    const t = this.transfers.get(key);
    if (!t || t.direction !== 'in' || t.state !== 'offered') return;
    const link = this.#links.get(t.from);
    if (!link) return;
    t.state = 'receiving';
    link.send({ type: 'file-accept', id: t.id });
    const timer = setTimeout(() => {
      if (t.state === 'receiving' && !t.channel) {
        this.#links.get(t.from)?.send({ type: 'file-cancel', id: t.id });
        this.#endIncoming(t, 'failed', 'timeout', false);
      }
    }, CHANNEL_WAIT_MS);
    /** @type {any} */ (timer).unref?.();
    this.#emit('update', t);
  }

  /**
   * Turns an offer made to us down.
   * @param {string} key
   */
  decline(key) {
    const t = this.transfers.get(key);
    if (!t || t.direction !== 'in' || t.state !== 'offered') return;
    this.#links.get(t.from)?.send({ type: 'file-decline', id: t.id });
    this.#endIncoming(t, 'declined', 'declined', false);
  }

  /**
   * Stops a transfer, ours (for every recipient) or one coming to us.
   * @param {string} key
   */
  cancel(key) {
    const t = this.transfers.get(key);
    if (!t) return;
    if (t.direction === 'out') {
      for (const leg of t.legs.values()) {
        if (!isFinal(leg.state)) this.#endLeg(t, leg, 'cancelled', 'by-us', true);
      }
    } else if (!isFinal(t.state)) {
      if (t.state === 'offered') {
        this.decline(key);
        return;
      }
      this.#endIncoming(t, 'cancelled', 'by-us', true);
    }
  }

  /** Ends every transfer and forgets them (a new room). */
  clear() {
    for (const key of [...this.transfers.keys()]) this.cancel(key);
    for (const t of this.transfers.values()) {
      if (t.direction === 'in' && t.url) URL.revokeObjectURL(t.url);
    }
    this.transfers.clear();
    this.#lastProgress.clear();
  }

  /**
   * A `file-*` message from MEMBER. Returns false if MSG is not one.
   * @param {string} member
   * @param {{type:string, [k:string]:unknown}} msg
   * @returns {boolean}
   */
  onMessage(member, msg) {
    const id = typeof msg.id === 'string' && ID.test(msg.id) ? msg.id : null;
    if (!id || !msg.type.startsWith('file-')) return false;
    switch (msg.type) {
      case 'file-offer':
        this.#onOffer(member, id, msg);
        return true;
      case 'file-accept':
        this.#onAnswer(member, id, true, '');
        return true;
      case 'file-decline': {
        const reason = msg.reason === 'too-large' || msg.reason === 'busy' ? msg.reason : 'declined';
        this.#onAnswer(member, id, false, reason);
        return true;
      }
      case 'file-done': {
        const t = this.#outgoing(id);
        const leg = t?.legs.get(member);
        // Only once every byte was handed over: a recipient cannot claim
        // the file before it could have it.
        if (t && leg && leg.state === 'sending' && leg.bytes >= t.size) this.#endLeg(t, leg, 'done', '', false);
        return true;
      }
      case 'file-cancel': {
        const t = this.#outgoing(id);
        const leg = t?.legs.get(member);
        if (t && leg && !isFinal(leg.state)) {
          this.#endLeg(t, leg, 'cancelled', 'by-them', false);
          return true;
        }
        const inc = this.#incoming(member, id);
        if (inc && !isFinal(inc.state)) this.#endIncoming(inc, 'cancelled', 'by-them', false);
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * A data channel MEMBER opened to us. Returns false if it is not a file
   * channel (then it is not ours to handle). One we did not ask for is closed.
   * @param {string} member
   * @param {RTCDataChannel} channel
   * @returns {boolean}
   */
  onChannel(member, channel) {
    if (!channel.label.startsWith(FILE_CHANNEL_PREFIX)) return false;
    const t = this.#incoming(member, channel.label.slice(FILE_CHANNEL_PREFIX.length));
    if (!t || t.state !== 'receiving' || t.channel) {
      channel.close();
      return true;
    }
    t.channel = channel;
    channel.binaryType = 'arraybuffer';
    /** @type {(ArrayBuffer | Blob)[]} */
    let parts = [];
    let unfolded = 0;
    const finish = () => {
      const blob = new Blob(parts, { type: 'application/octet-stream' });
      parts = [];
      t.blob = blob;
      t.url = URL.createObjectURL(blob);
      this.#links.get(member)?.send({ type: 'file-done', id: t.id });
      this.#endIncoming(t, 'done', '', true);
    };
    channel.onopen = () => {
      if (t.size === 0 && t.state === 'receiving') finish();
    };
    channel.onmessage = (ev) => {
      if (t.state !== 'receiving') return;
      const data = ev.data;
      if (!(data instanceof ArrayBuffer) || t.bytes + data.byteLength > t.size) {
        parts = [];
        this.#links.get(member)?.send({ type: 'file-cancel', id: t.id });
        this.#endIncoming(t, 'failed', 'bad-data', true);
        return;
      }
      parts.push(data);
      t.bytes += data.byteLength;
      unfolded += data.byteLength;
      if (unfolded >= FOLD_BYTES) {
        parts = [new Blob(parts)];
        unfolded = 0;
      }
      if (t.bytes === t.size) finish();
      else this.#progress(t);
    };
    channel.onclose = () => {
      parts = [];
      later(() => {
        if (!isFinal(t.state)) this.#endIncoming(t, 'failed', 'lost', false);
      });
    };
    if (channel.readyState === 'open') /** @type {any} */ (channel).onopen();
    return true;
  }

  /**
   * @param {string} member
   * @param {string} id
   * @param {{[k:string]:unknown}} msg
   */
  #onOffer(member, id, msg) {
    if (this.#incoming(member, id) || !this.#links.has(member)) return;
    const link = /** @type {FileLink} */ (this.#links.get(member));
    const size = msg.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return;
    let open = 0;
    for (const t of this.transfers.values()) {
      if (t.direction === 'in' && t.from === member && !isFinal(t.state)) open += 1;
    }
    if (open >= MAX_OPEN_OFFERS) {
      // A flood of offers is turned down without a line in the chat each.
      link.send({ type: 'file-decline', id, reason: 'busy' });
      return;
    }
    this.#serial += 1;
    /** @type {Incoming} */
    const t = {
      direction: 'in',
      key: `in${this.#serial}`,
      id,
      from: member,
      name: cleanFileName(msg.name),
      size,
      state: 'offered',
      reason: '',
      bytes: 0,
      url: null,
      blob: null,
      channel: null,
      sent: Date.now(),
    };
    this.transfers.set(t.key, t);
    if (size > this.maxFileSize) {
      link.send({ type: 'file-decline', id, reason: 'too-large' });
      t.state = 'declined';
      t.reason = 'too-large';
    }
    this.#emit('added', t);
  }

  /**
   * @param {string} member
   * @param {string} id
   * @param {boolean} yes
   * @param {FileReason} reason
   */
  #onAnswer(member, id, yes, reason) {
    const t = this.#outgoing(id);
    const leg = t?.legs.get(member);
    const link = this.#links.get(member);
    if (!t || !leg || leg.state !== 'offered' || !link) return;
    if (!yes) {
      this.#endLeg(t, leg, 'declined', reason, false);
      return;
    }
    leg.state = 'sending';
    let channel;
    try {
      channel = link.openChannel(FILE_CHANNEL_PREFIX + t.id);
    } catch {
      link.send({ type: 'file-cancel', id: t.id });
      this.#endLeg(t, leg, 'failed', 'lost', false);
      return;
    }
    leg.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.onopen = () => this.#pump(t, leg, link, channel);
    channel.onclose = () => later(() => {
      if (!isFinal(leg.state)) this.#endLeg(t, leg, 'failed', 'lost', false);
    });
    this.#emit('update', t);
  }

  /**
   * Writes T's bytes into CHANNEL, keeping the buffer under HIGH_WATER.
   * @param {Outgoing} t
   * @param {Leg} leg
   * @param {FileLink} link
   * @param {RTCDataChannel} channel
   */
  async #pump(t, leg, link, channel) {
    const max = link.maxMessageSize();
    const chunk = max > 0 ? Math.min(CHUNK_BYTES, max) : CHUNK_BYTES;
    let offset = 0;
    const alive = () => leg.state === 'sending' && channel.readyState === 'open';
    try {
      while (offset < t.size && alive()) {
        if (channel.bufferedAmount > HIGH_WATER) {
          await drained(channel);
          continue;
        }
        const block = new Uint8Array(await t.file.slice(offset, offset + READ_BYTES).arrayBuffer());
        if (!block.byteLength) throw new Error('short read');
        for (let at = 0; at < block.byteLength && alive(); at += chunk) {
          channel.send(block.subarray(at, at + chunk));
        }
        offset += block.byteLength;
        leg.bytes = Math.max(0, offset - channel.bufferedAmount);
        this.#progress(t);
      }
      if (alive()) {
        // Everything is in the channel's hands; the recipient says when it
        // has it all (file-done).
        leg.bytes = t.size;
        this.#emit('update', t);
      }
    } catch {
      if (!alive()) return;
      link.send({ type: 'file-cancel', id: t.id });
      this.#endLeg(t, leg, 'failed', 'unreadable', true);
    }
  }

  /**
   * @param {Outgoing} t
   * @param {Leg} leg
   * @param {FileState} state
   * @param {FileReason} reason
   * @param {boolean} tell send `file-cancel` to the recipient
   */
  #endLeg(t, leg, state, reason, tell) {
    leg.state = state;
    leg.reason = reason;
    if (tell && reason === 'by-us') this.#links.get(leg.member)?.send({ type: 'file-cancel', id: t.id });
    const ch = leg.channel;
    leg.channel = null;
    if (ch) {
      ch.onclose = null;
      try { ch.close(); } catch { /* already closed */ }
    }
    this.#emit('update', t);
  }

  /**
   * @param {Incoming} t
   * @param {FileState} state
   * @param {FileReason} reason
   * @param {boolean} tell send `file-cancel` to the sender (a cancel by us)
   */
  #endIncoming(t, state, reason, tell) {
    t.state = state;
    t.reason = reason;
    if (tell && reason === 'by-us') this.#links.get(t.from)?.send({ type: 'file-cancel', id: t.id });
    const ch = t.channel;
    t.channel = null;
    if (ch) {
      ch.onclose = null;
      ch.onmessage = null;
      // Done: the sender closes the channel when our file-done arrives, so
      // it never sees the close first and takes it for a lost connection.
      if (state !== 'done') {
        try { ch.close(); } catch { /* already closed */ }
      }
    }
    this.#emit('update', t);
  }

  /** @param {string} id */
  #outgoing(id) {
    const t = this.transfers.get(id);
    return t && t.direction === 'out' ? t : undefined;
  }

  /**
   * @param {string} member
   * @param {string} id
   * @returns {Incoming | undefined}
   */
  #incoming(member, id) {
    for (const t of this.transfers.values()) {
      if (t.direction === 'in' && t.from === member && t.id === id) return t;
    }
    return undefined;
  }

  /** Forgets the oldest finished transfers beyond MAX_KEPT. */
  #prune() {
    for (const [key, t] of this.transfers) {
      if (this.transfers.size <= MAX_KEPT) break;
      const final = t.direction === 'in' ? isFinal(t.state) : isFinal(overallState(t));
      if (!final) continue;
      if (t.direction === 'in' && t.url) URL.revokeObjectURL(t.url);
      this.transfers.delete(key);
      this.#lastProgress.delete(key);
    }
  }

  /** @param {Transfer} t */
  #progress(t) {
    const now = performance.now();
    if (now - (this.#lastProgress.get(t.key) ?? -Infinity) < PROGRESS_MS) return;
    this.#lastProgress.set(t.key, now);
    this.#emit('update', t);
  }

  /**
   * @param {'added' | 'update'} type
   * @param {Transfer} transfer
   */
  #emit(type, transfer) {
    if (type === 'added' && this.transfers.size > MAX_KEPT) this.#prune();
    this.dispatchEvent(new CustomEvent(type, { detail: { transfer } }));
  }
}

/** @param {() => void} fn */
function later(fn) {
  const timer = setTimeout(fn, CLOSE_GRACE_MS);
  /** @type {any} */ (timer).unref?.();
}

/**
 * Resolves when CHANNEL's buffer falls to its low threshold or it closes.
 * @param {RTCDataChannel} channel
 * @returns {Promise<void>}
 */
function drained(channel) {
  return new Promise((resolve) => {
    const done = () => {
      channel.removeEventListener('bufferedamountlow', done);
      channel.removeEventListener('close', done);
      resolve();
    };
    channel.addEventListener('bufferedamountlow', done);
    channel.addEventListener('close', done);
  });
}
