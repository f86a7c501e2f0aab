// @ts-check
/**
 * room.js — one person's side of a call: ties the signaling `Client`, one
 * `PeerLink` per remote member, the local media and the chat together. It
 * decides who offers (the joiner, to everyone in `peers`), who waits (the
 * members, on `peer-joined`), what a resume keeps and what a failed resume
 * rebuilds. No DOM here: ui.js listens to the events.
 *
 * Events:
 * - `joined`         detail `{room, name, peers, rejoined}`: a new membership
 *                    (also after a room change or a resume that had to rejoin).
 * - `resumed`        detail `{room, name, peers}`: the socket came back, calls kept.
 * - `member-added`   detail `{name}` (a Member is in `members`).
 * - `member-removed` detail `{name}`.
 * - `member-updated` detail `{name}`: state or remote media flags changed.
 * - `member-track`   detail `{name}`: a remote track arrived (see `member.link.remoteStream`).
 * - `signaling`      detail `{state}`: the socket's state (see signaling.js).
 * - `left`           the person left.
 * - `ended`          detail `{reason, room}`: the membership ended without the
 *                    person asking (replaced, protocol error, failed resume).
 * - `error`          detail `{code, message}`: a server error not tied to a join.
 * - `speaking`       detail `{name, on}`: someone started or stopped speaking
 *                    (`name` is '' for the person using this page).
 */

import { PeerLink } from './peer.js';
import { Chat } from './chat.js';

const SPEAKING_POLL_MS = 300;
/** Audio level (0..1, linear) from which someone counts as speaking. */
const SPEAKING_LEVEL = 0.04;
const SPEAKING_HOLD_MS = 700;

/**
 * @typedef {object} Member
 * @property {string} name
 * @property {PeerLink} link
 * @property {boolean | null} audio the member's microphone is on (null: not told yet)
 * @property {boolean | null} video the member's camera is on (null: not told yet)
 */

export class Room extends EventTarget {
  /** @type {Map<string, Member>} remote members by name, in joining order */
  members = new Map();
  /** @type {string | null} */
  room = null;
  /** @type {string | null} our own name in the room */
  self = null;
  /** @type {RTCIceServer[]} */
  iceServers = [];
  chat = new Chat();
  #resizeQueued = false;
  /** @type {number | undefined} */
  #levelTimer;
  /** @type {Map<string, number>} who is speaking ('' = us) → until when (ms) */
  #speaking = new Map();
  /** @type {Set<string>} who is shown as speaking */
  #speakingNow = new Set();
  #polling = false;

  /**
   * @param {{client: import('./signaling.js').Client, media: import('./media.js').LocalMedia,
   *   iceTransportPolicy?: RTCIceTransportPolicy}} deps
   *   iceTransportPolicy: 'relay' to use TURN relays only (the page's ?relay=1)
   */
  constructor({ client, media, iceTransportPolicy = 'all' }) {
    super();
    this.client = client;
    this.media = media;
    /** @type {RTCIceTransportPolicy} */
    this.iceTransportPolicy = iceTransportPolicy;
    const on = (/** @type {string} */ type, /** @type {(d:any)=>void} */ fn) =>
      client.addEventListener(type, (ev) => fn(/** @type {CustomEvent} */ (ev).detail));
    on('joined', (m) => this.#onJoined(m));
    on('resumed', (m) => this.#onResumed(m));
    on('peer-joined', (m) => this.#onPeerJoined(m.name));
    on('peer-left', (m) => this.#onPeerLeft(m.name));
    on('offer', (m) => this.#linkFor(m.from).handleDescription({ type: 'offer', sdp: m.sdp }));
    on('answer', (m) => this.members.get(m.from)?.link.handleDescription({ type: 'answer', sdp: m.sdp }));
    on('candidate', (m) => this.members.get(m.from)?.link.handleCandidate(m.candidate ?? null));
    on('status', (d) => this.#emit('signaling', d));
    on('error', (d) => this.#emit('error', d));
    on('ended', (d) => {
      const room = this.room;
      this.#reset();
      this.room = null;
      this.#emit('ended', { reason: d.reason, room });
    });
    media.addEventListener('change', () => this.#onLocalMedia());
  }

  /** @returns {boolean} */
  get inRoom() {
    return this.room !== null;
  }

  /**
   * Joins ROOM as NAME, or moves there from the current room. Rejects with
   * the server's refusal (a SignalingError) and then stays where it was.
   * @param {string} room
   * @param {string} name
   */
  async join(room, name) {
    await this.client.join(room, name);
  }

  /** Leaves the call (the socket stays open for another join). */
  leave() {
    this.client.leave();
    this.#reset();
    this.room = null;
    this.#emit('left', {});
  }

  /**
   * Sends a chat message to every member. Returns false if there was nothing to send.
   * @param {string} text
   * @returns {boolean}
   */
  sendChat(text) {
    const msg = Chat.message(text);
    if (!msg || !this.self) return false;
    for (const m of this.members.values()) m.link.send(msg);
    this.chat.add(this.self, true, msg);
    return true;
  }

  /**
   * What arrives from each member (inbound-rtp counters, live tracks).
   * @returns {Promise<Record<string, Awaited<ReturnType<PeerLink['stats']>>>>}
   */
  async stats() {
    /** @type {Record<string, any>} */
    const out = {};
    for (const [name, m] of this.members) out[name] = await m.link.stats();
    return out;
  }

  /** @param {import('./signaling.js').JoinedMessage} msg */
  #onJoined(msg) {
    const sameRoom = msg.room === this.room;
    this.#reset();
    if (!sameRoom) this.chat.clear();
    this.room = msg.room;
    this.self = msg.name;
    this.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
    this.#emit('joined', { room: msg.room, name: msg.name, peers: msg.peers, rejoined: !!msg.rejoined });
    clearInterval(this.#levelTimer);
    this.#levelTimer = setInterval(() => this.#pollLevels(), SPEAKING_POLL_MS);
    if (!msg.rejoined) this.chat.system('you-joined', msg.room);
    // The joiner offers to everyone already there.
    this.media.fitToCall(msg.peers.length);
    for (const name of msg.peers) this.#addMember(name, false, msg.peers.length);
  }

  /** @param {import('./signaling.js').JoinedMessage} msg */
  #onResumed(msg) {
    this.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : this.iceServers;
    const peers = new Set(msg.peers);
    for (const name of [...this.members.keys()]) {
      if (!peers.has(name)) this.#onPeerLeft(name);
    }
    // Members who joined meanwhile offered to us; their offers follow.
    for (const name of msg.peers) {
      if (!this.members.has(name)) this.#onPeerJoined(name);
    }
    this.#emit('resumed', { room: msg.room, name: msg.name, peers: msg.peers });
  }

  /** @param {string} name */
  #onPeerJoined(name) {
    const old = this.members.get(name);
    if (old) this.#removeMember(name);
    this.#addMember(name, true);
    this.chat.system('joined', name);
  }

  /** @param {string} name */
  #onPeerLeft(name) {
    if (!this.members.has(name)) return;
    this.#removeMember(name);
    this.chat.system('left', name);
  }

  /**
   * The link for an offer's sender, made (polite) if the offer comes first.
   * @param {string} name
   */
  #linkFor(name) {
    return (this.members.get(name) || this.#addMember(name, true)).link;
  }

  /**
   * @param {string} name
   * @param {boolean} polite true when NAME is the joiner and will offer
   * @param {number} [callSize] remote members expected in the call
   * @returns {Member}
   */
  #addMember(name, polite, callSize = this.members.size + 1) {
    const link = new PeerLink({
      name,
      polite,
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      media: this.media,
      signal: (type, payload) => this.client.relay(type, name, payload),
      callSize,
    });
    /** @type {Member} */
    const member = { name, link, audio: null, video: null };
    this.members.set(name, member);
    const current = () => this.members.get(name) === member;
    link.addEventListener('state', () => current() && this.#emit('member-updated', { name }));
    link.addEventListener('track', () => current() && this.#emit('member-track', { name }));
    link.addEventListener('open', () => link.send(this.#mediaState()));
    link.addEventListener('message', (ev) => {
      if (!current()) return;
      const msg = /** @type {CustomEvent} */ (ev).detail;
      if (msg.type === 'chat') {
        this.chat.add(name, false, msg);
      } else if (msg.type === 'media') {
        member.audio = typeof msg.audio === 'boolean' ? msg.audio : member.audio;
        member.video = typeof msg.video === 'boolean' ? msg.video : member.video;
        this.#emit('member-updated', { name });
      }
      // Other types: ignored, as the protocol asks.
    });
    link.addEventListener('reset', (ev) => {
      // The remote member started over with a new connection (its offer no
      // longer fits ours): replace the link and apply the offer to it.
      if (!current()) return;
      this.#removeMember(name);
      this.#addMember(name, true).link.handleDescription(/** @type {CustomEvent} */ (ev).detail);
    });
    this.#emit('member-added', { name });
    this.#resize();
    return member;
  }

  /** @param {string} name */
  #removeMember(name) {
    const m = this.members.get(name);
    if (!m) return;
    this.members.delete(name);
    m.link.close();
    this.#emit('member-removed', { name });
    this.#resize();
  }

  #reset() {
    for (const name of [...this.members.keys()]) this.#removeMember(name);
    this.self = null;
    clearInterval(this.#levelTimer);
    this.#speaking.clear();
    this.#speakingNow.clear();
  }

  /**
   * Who is speaking: a mean level above the threshold since the last poll
   * marks a member (or us, under '') as speaking for SPEAKING_HOLD_MS. Emits
   * `speaking` {name, on} on changes.
   */
  async #pollLevels() {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const now = performance.now();
      /** @type {[string, number][]} */
      const levels = [];
      let local = 0;
      let first = true;
      for (const [name, m] of [...this.members]) {
        const l = await m.link.audioLevels(first);
        first = false;
        levels.push([name, m.audio === false ? 0 : l.remote]);
        local = Math.max(local, l.local);
      }
      levels.push(['', this.media.activeTrack('audio') ? local : 0]);
      for (const [name, level] of levels) {
        const was = this.#speakingNow.has(name);
        if (level >= SPEAKING_LEVEL) this.#speaking.set(name, now + SPEAKING_HOLD_MS);
        const is = (this.#speaking.get(name) || 0) > now && (name === '' || this.members.has(name));
        if (is === was) continue;
        if (is) this.#speakingNow.add(name);
        else this.#speakingNow.delete(name);
        this.#emit('speaking', { name, on: is });
      }
    } finally {
      this.#polling = false;
    }
  }

  /** Adapts capture and encodings to the call size, once per burst of changes. */
  #resize() {
    if (this.#resizeQueued) return;
    this.#resizeQueued = true;
    setTimeout(() => {
      this.#resizeQueued = false;
      const n = this.members.size;
      this.media.fitToCall(n);
      for (const m of this.members.values()) m.link.setCallSize(n);
    }, 0);
  }

  /** @returns {{type:'media', audio:boolean, video:boolean}} */
  #mediaState() {
    return { type: 'media', audio: !!this.media.activeTrack('audio'), video: !!this.media.activeTrack('video') };
  }

  #onLocalMedia() {
    const state = this.#mediaState();
    for (const m of this.members.values()) {
      m.link.updateLocalTrack('audio');
      m.link.updateLocalTrack('video');
      m.link.send(state);
    }
  }

  /**
   * @param {string} type
   * @param {object} detail
   */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
