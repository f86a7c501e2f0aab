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
 * Room access (protocol v1.1):
 * - `access`         detail `{host, locked, protected, joined}` (see `access`):
 *                    who is host, whether the lobby is locked, whether a
 *                    password is set; `joined`: as told by a new `joined`.
 * - `knocks`         detail `{names}`: who waits in the lobby (host only).
 * - `waiting`        detail `{room}`: our join waits in ROOM's lobby; any call
 *                    we were in is over.
 * - `asked-mute`     detail `{by}`: the host asked us to mute; the microphone
 *                    is already off.
 * `ended` has reason `removed` and `by` when the host removed us.
 * Hands and reactions (over the data channel):
 * - `hand`           detail `{name, up}`: someone ('' = us) raised or lowered
 *                    a hand; `raisedHands()` lists them, first raised first.
 * - `reaction`       detail `{name, emoji}`: someone ('' = us) reacted.
 * Screen share:
 * - `screen`         detail `{name, on}`: NAME ('' = us) started or stopped
 *                    sharing; a member's share is `member.link.screenStream`.
 * Files: `room.files` (files.js) has the transfers and their events; each
 * new one is also a chat entry of kind `file`.
 *
 * Network changes (recovery; docs/web-client.md "Network changes"): when a
 * link stalls, the room probes our addresses (network.js) every
 * PROBE_INTERVAL_MS while any link stays stalled. A change of our own
 * network (addresses, `online`, `navigator.connection`) resumes the
 * signaling socket on a fresh connection at once and restarts ICE on every
 * link that is not connected or stalled; so does a resume of the socket.
 */

import { PeerLink } from './peer.js';
import { NetworkWatch } from './network.js';
import { Chat } from './chat.js';
import { Files } from './files.js';

/** The reactions a member may send; anything else that arrives is dropped. */
export const REACTIONS = Object.freeze(['👍', '👏', '😂', '❤️', '🎉', '😮']);

const SPEAKING_POLL_MS = 300;
/** Audio level (0..1, linear) from which someone counts as speaking. */
const SPEAKING_LEVEL = 0.04;
const SPEAKING_HOLD_MS = 700;
/** While a link is stalled, our addresses are probed this often. */
const PROBE_INTERVAL_MS = 1500;

/**
 * @typedef {object} Member
 * @property {string} name
 * @property {PeerLink} link
 * @property {boolean | null} audio the member's microphone is on (null: not told yet)
 * @property {boolean | null} video the member's camera is on (null: not told yet)
 * @property {number | null} hand when the member raised its hand (its own
 *   clock, ms since the epoch), null when it is down
 * @property {boolean} screen the member says it shares its screen
 */

/**
 * The access fields of a `joined` message, FALLBACK for those it lacks.
 * @param {import('./signaling.js').JoinedMessage} msg
 * @param {{host:string|null, locked:boolean, protected:boolean}} fallback
 */
function accessOf(msg, fallback) {
  return {
    host: typeof msg.host === 'string' ? msg.host : fallback.host,
    locked: typeof msg.locked === 'boolean' ? msg.locked : fallback.locked,
    protected: typeof msg.protected === 'boolean' ? msg.protected : fallback.protected,
  };
}

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
  /** Files sent and offered in this call (peer to peer). */
  files = new Files();
  /** @type {{host:string|null, locked:boolean, protected:boolean}} the room's
   * access state as the server last told it (never the password itself) */
  access = { host: null, locked: false, protected: false };
  /** @type {string[]} who waits in the lobby, in knocking order (host only) */
  knocks = [];
  /** @type {string[]} admitted by us and not seen joining yet: a `room-full`
   * error puts the first of them back among the knocks */
  #admitting = [];
  #resizeQueued = false;
  /** The call size the links were last fitted to (-1: none yet). */
  #sizedFor = -1;
  /** @type {number | undefined} */
  #levelTimer;
  /** @type {Map<string, number>} who is speaking ('' = us) → until when (ms) */
  #speaking = new Map();
  /** @type {Set<string>} who is shown as speaking */
  #speakingNow = new Set();
  #polling = false;
  /** @type {number | null} when we raised our hand (ms since the epoch), null: down */
  handRaisedAt = null;
  /** @type {MediaStream | null} our screen share, while we share */
  screen = null;
  /** true while the stalled-link probe loop runs */
  #probing = false;

  /**
   * @param {{client: import('./signaling.js').Client, media: import('./media.js').LocalMedia,
   *   iceTransportPolicy?: RTCIceTransportPolicy, network?: NetworkWatch}} deps
   *   iceTransportPolicy: 'relay' to use TURN relays only (the page's ?relay=1);
   *   network: signs of our own network changing (default: a new NetworkWatch)
   */
  constructor({ client, media, iceTransportPolicy = 'all', network }) {
    super();
    this.client = client;
    this.media = media;
    this.network = network || new NetworkWatch();
    this.network.addEventListener('change', (ev) => this.#onNetworkChange(/** @type {CustomEvent} */ (ev).detail.reason));
    /** @type {RTCIceTransportPolicy} */
    this.iceTransportPolicy = iceTransportPolicy;
    const on = (/** @type {string} */ type, /** @type {(d:any)=>void} */ fn) =>
      client.addEventListener(type, (ev) => fn(/** @type {CustomEvent} */ (ev).detail));
    on('joined', (m) => this.#onJoined(m));
    on('resumed', (m) => this.#onResumed(m));
    on('peer-joined', (m) => {
      this.#admitting = this.#admitting.filter((n) => n !== m.name);
      // However they got in, they no longer wait (no knock-gone follows an admit).
      if (this.knocks.includes(m.name)) this.#setKnocks(this.knocks.filter((n) => n !== m.name));
      this.#onPeerJoined(m.name);
    });
    on('peer-left', (m) => this.#onPeerLeft(m.name));
    on('offer', (m) => this.#linkFor(m.from).handleDescription({ type: 'offer', sdp: m.sdp }));
    on('answer', (m) => this.members.get(m.from)?.link.handleDescription({ type: 'answer', sdp: m.sdp }));
    on('candidate', (m) => this.members.get(m.from)?.link.handleCandidate(m.candidate ?? null));
    on('status', (d) => this.#emit('signaling', d));
    on('error', (d) => {
      if (d.code === 'room-full' && this.#admitting.length) {
        // Our admit came past the room's size: that person still waits.
        const name = /** @type {string} */ (this.#admitting.shift());
        if (!this.knocks.includes(name)) this.#setKnocks([name, ...this.knocks]);
      }
      this.#emit('error', d);
    });
    on('ended', (d) => {
      const room = this.room || this.client.waiting?.room || null;
      this.#reset();
      this.room = null;
      this.#emit('ended', d.by === undefined ? { reason: d.reason, room } : { reason: d.reason, room, by: d.by });
    });
    on('waiting', (m) => {
      this.#reset();
      this.room = null;
      this.#emit('waiting', { room: m.room });
    });
    on('host', (m) => this.#setAccess({ host: String(m.name) }));
    on('room-settings', (m) => {
      /** @type {Partial<Room['access']>} */
      const change = {};
      if (typeof m.locked === 'boolean') change.locked = m.locked;
      if (typeof m.protected === 'boolean') change.protected = m.protected;
      this.#setAccess(change);
      // Unlocking admits everyone waiting (as far as the size allows; the
      // rest are refused): the lobby is empty, and no knock-gone says so.
      if (m.locked === false && this.knocks.length) this.#setKnocks([]);
    });
    on('knock', (m) => {
      const name = String(m.name);
      if (!this.knocks.includes(name)) this.#setKnocks([...this.knocks, name]);
    });
    on('knock-gone', (m) => this.#setKnocks(this.knocks.filter((n) => n !== m.name)));
    on('ask-mute', (m) => {
      // The person keeps the last word: this only switches the microphone
      // off, as the mute button would; they can switch it on again.
      if (this.media.audioTrack && this.media.audioEnabled) this.media.setAudioEnabled(false);
      this.#emit('asked-mute', { by: String(m.by || '') });
    });
    media.addEventListener('change', () => this.#onLocalMedia());
    this.files.addEventListener('added', (ev) => {
      const t = /** @type {CustomEvent} */ (ev).detail.transfer;
      this.chat.file(t.key, t.direction === 'out' ? this.self || '' : t.from, t.direction === 'out');
    });
    this.chat.addEventListener('clear', () => this.files.clear());
  }

  /** @returns {boolean} */
  get inRoom() {
    return this.room !== null;
  }

  /** @returns {boolean} we are the room's host */
  get isHost() {
    return this.self !== null && this.access.host === this.self;
  }

  /**
   * Joins ROOM as NAME, or moves there from the current room. Rejects with
   * the server's refusal (a SignalingError) and then stays where it was. A
   * locked room makes it wait (event `waiting`) until the host decides.
   * @param {string} room
   * @param {string} name
   * @param {import('./signaling.js').JoinOptions} [opts] password, access token
   */
  async join(room, name, opts) {
    await this.client.join(room, name, opts);
  }

  /** Stops waiting in a lobby; the pending join rejects with `stopped`. */
  stopWaiting() {
    this.client.stopWaiting();
  }

  // Host commands. Each returns false when nothing could be sent (socket
  // down); the server refuses with an `error` event (`not-host`, …).

  /** @param {string} password a non-empty password for the room */
  setPassword(password) {
    return this.client.command({ type: 'room-settings', password });
  }

  clearPassword() {
    return this.client.command({ type: 'room-settings', password: null });
  }

  /** @param {boolean} locked new joiners wait in the lobby */
  setLocked(locked) {
    return this.client.command({ type: 'room-settings', locked });
  }

  /** @param {string} name someone waiting in the lobby */
  admit(name) {
    const sent = this.client.command({ type: 'admit', name });
    if (sent) {
      this.#admitting.push(name);
      this.#setKnocks(this.knocks.filter((n) => n !== name));
    }
    return sent;
  }

  /** @param {string} name someone waiting in the lobby */
  deny(name) {
    const sent = this.client.command({ type: 'deny', name });
    if (sent) this.#setKnocks(this.knocks.filter((n) => n !== name));
    return sent;
  }

  /** @param {string} name a member */
  remove(name) {
    return this.client.command({ type: 'remove', name });
  }

  /** @param {string} name a member */
  askMute(name) {
    return this.client.command({ type: 'ask-mute', name });
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
   * Raises (UP true) or lowers our hand, for everyone.
   * @param {boolean} up
   */
  raiseHand(up) {
    if (!this.self || up === (this.handRaisedAt !== null)) return;
    this.handRaisedAt = up ? Date.now() : null;
    const msg = this.#handState();
    for (const m of this.members.values()) m.link.send(msg);
    this.#emit('hand', { name: '', up });
  }

  /**
   * Starts sharing the screen (the browser asks which one). Call it from a
   * click: browsers allow `getDisplayMedia` only then. Resolves to false if
   * the person cancelled or the browser cannot share.
   * @returns {Promise<boolean>}
   */
  async startShare() {
    if (this.screen || !this.self) return !!this.screen;
    if (!navigator.mediaDevices?.getDisplayMedia) return false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
    } catch {
      return false;
    }
    if (!this.self) {
      for (const t of stream.getTracks()) t.stop();
      return false;
    }
    const video = stream.getVideoTracks()[0];
    // Text and lines stay sharp; motion may stutter.
    if (video && 'contentHint' in video) video.contentHint = 'detail';
    // The browser's own "Stop sharing" ends the track.
    if (video) video.addEventListener('ended', () => this.stopShare());
    this.screen = stream;
    for (const m of this.members.values()) {
      m.link.setScreen(stream);
      m.link.send({ type: 'screen', on: true });
    }
    this.#emit('screen', { name: '', on: true });
    return true;
  }

  /** Stops sharing the screen, for everyone. */
  stopShare() {
    const stream = this.screen;
    if (!stream) return;
    this.screen = null;
    for (const t of stream.getTracks()) t.stop();
    for (const m of this.members.values()) {
      m.link.send({ type: 'screen', on: false });
      m.link.setScreen(null);
    }
    this.#emit('screen', { name: '', on: false });
  }

  /**
   * Sends a reaction (one of REACTIONS) to everyone. Returns false for
   * anything else.
   * @param {string} emoji
   * @returns {boolean}
   */
  react(emoji) {
    if (!this.self || !REACTIONS.includes(emoji)) return false;
    for (const m of this.members.values()) m.link.send({ type: 'reaction', emoji });
    this.#emit('reaction', { name: '', emoji });
    return true;
  }

  /**
   * Offers FILE to everyone in the call (see files.js): the transfer, or
   * why not (`empty-call`, `too-large`).
   * @param {File} file
   */
  sendFile(file) {
    return this.files.offer(file);
  }

  /**
   * Everyone whose hand is up ('' = us), first raised first.
   * @returns {string[]}
   */
  raisedHands() {
    /** @type {[string, number][]} */
    const up = [];
    if (this.handRaisedAt !== null) up.push(['', this.handRaisedAt]);
    for (const m of this.members.values()) if (m.hand !== null) up.push([m.name, m.hand]);
    return up.sort((a, b) => a[1] - b[1]).map(([name]) => name);
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
    this.#setAccess(accessOf(msg, { host: null, locked: false, protected: false }), true);
    // The joiner offers to everyone already there. The connections (and
    // their offers) start before the page builds the call view on `joined`,
    // so the offers are built meanwhile, off the main thread; their tiles
    // follow it.
    this.media.fitToCall(msg.peers.length);
    // Every connection first, then the offers: a connection made while
    // offers are being built waits for them at each step (Chromium).
    const added = msg.peers.map((name) => this.#addMember(name, false, msg.peers.length, false));
    for (const m of added) m.link.offer();
    this.#sizedFor = added.length;
    this.#emit('joined', { room: msg.room, name: msg.name, peers: msg.peers, rejoined: !!msg.rejoined });
    for (const m of added) {
      if (this.members.get(m.name) === m) this.#emit('member-added', { name: m.name });
    }
    clearInterval(this.#levelTimer);
    this.#levelTimer = setInterval(() => this.#pollLevels(), SPEAKING_POLL_MS);
    if (!msg.rejoined) this.chat.system('you-joined', msg.room);
  }

  /** @param {import('./signaling.js').JoinedMessage} msg */
  #onResumed(msg) {
    this.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : this.iceServers;
    this.#setAccess(accessOf(msg, this.access));
    const peers = new Set(msg.peers);
    for (const name of [...this.members.keys()]) {
      if (!peers.has(name)) this.#onPeerLeft(name);
    }
    // Members who joined meanwhile offered to us; their offers follow.
    for (const name of msg.peers) {
      if (!this.members.has(name)) this.#onPeerJoined(name);
    }
    // The socket came back (perhaps over a new network): links that are not
    // connected restart ICE now that offers can get through.
    for (const m of this.members.values()) m.link.recover();
    this.#emit('resumed', { room: msg.room, name: msg.name, peers: msg.peers });
  }

  /** @param {string} name */
  #onPeerJoined(name) {
    const old = this.members.get(name);
    if (old) this.#removeMember(name, 'lost');
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
   * @param {boolean} [announce] emit `member-added` and offer now (false:
   *   the caller does both, see #onJoined)
   * @returns {Member}
   */
  #addMember(name, polite, callSize = this.members.size + 1, announce = true) {
    const link = new PeerLink({
      name,
      polite,
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      media: this.media,
      signal: (type, payload) => {
        // Our own candidates tell the network watch which addresses we use.
        if (type === 'candidate') this.network.noteCandidate(payload.candidate ?? null);
        this.client.relay(type, name, payload);
      },
      callSize,
      network: this.network,
      offerNow: announce,
    });
    /** @type {Member} */
    const member = { name, link, audio: null, video: null, hand: null, screen: false };
    this.members.set(name, member);
    const current = () => this.members.get(name) === member;
    link.addEventListener('state', () => current() && this.#emit('member-updated', { name }));
    link.addEventListener('track', () => current() && this.#emit('member-track', { name }));
    link.addEventListener('stalled', () => current() && this.#probeWhileStalled());
    link.addEventListener('open', () => {
      link.send(this.#mediaState());
      // A member who joins late learns a raised hand and a share at once.
      if (this.handRaisedAt !== null) link.send(this.#handState());
      // The share joins once the first negotiation is done (the channel is
      // open), so it never races the joiner's offer.
      if (this.screen) {
        link.setScreen(this.screen);
        link.send({ type: 'screen', on: true });
      }
    });
    this.files.attach(name, link);
    link.addEventListener('datachannel', (ev) => {
      const { channel } = /** @type {CustomEvent} */ (ev).detail;
      if (!current() || !this.files.onChannel(name, channel)) channel.close();
    });
    link.addEventListener('screen-track', () => current() && member.screen && this.#emit('screen', { name, on: true }));
    link.addEventListener('message', (ev) => {
      if (!current()) return;
      const msg = /** @type {CustomEvent} */ (ev).detail;
      if (msg.type === 'chat') {
        this.chat.add(name, false, msg);
      } else if (msg.type.startsWith('file-')) {
        this.files.onMessage(name, msg);
      } else if (msg.type === 'media') {
        member.audio = typeof msg.audio === 'boolean' ? msg.audio : member.audio;
        member.video = typeof msg.video === 'boolean' ? msg.video : member.video;
        this.#emit('member-updated', { name });
      } else if (msg.type === 'hand') {
        const at = Number.isFinite(msg.at) ? Number(msg.at) : Date.now();
        const hand = msg.up === true ? at : null;
        if ((member.hand === null) !== (hand === null)) {
          member.hand = hand;
          this.#emit('hand', { name, up: hand !== null });
        }
      } else if (msg.type === 'screen') {
        const on = msg.on === true;
        if (on !== member.screen) {
          member.screen = on;
          this.#emit('screen', { name, on });
        }
      } else if (msg.type === 'reaction') {
        if (typeof msg.emoji === 'string' && REACTIONS.includes(msg.emoji)) {
          this.#emit('reaction', { name, emoji: msg.emoji });
        }
      }
      // Other types: ignored, as the protocol asks.
    });
    link.addEventListener('reset', (ev) => {
      // The remote member started over with a new connection (its offer no
      // longer fits ours): replace the link and apply the offer to it.
      if (!current()) return;
      this.#removeMember(name, 'lost');
      this.#addMember(name, true).link.handleDescription(/** @type {CustomEvent} */ (ev).detail);
    });
    if (announce) this.#emit('member-added', { name });
    this.#resize();
    return member;
  }

  /**
   * A link stalled: is it our network? Probes our addresses now and every
   * PROBE_INTERVAL_MS while any link stays stalled (a new address may take
   * a while to come); a change lands in #onNetworkChange.
   */
  async #probeWhileStalled() {
    if (this.#probing) return;
    this.#probing = true;
    try {
      while (this.inRoom && [...this.members.values()].some((m) => m.link.stalled)) {
        await this.network.check();
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
      }
    } finally {
      this.#probing = false;
    }
  }

  /**
   * Our own network changed: resume the socket on a fresh connection (the
   * old one may be dead without the browser knowing) and restart ICE on
   * every link that is not connected, at once. Offline, or without a single
   * address, nothing can get through: the next sign (`online`, a probe
   * finding an address) does it.
   * @param {string} reason
   */
  #onNetworkChange(reason) {
    console.info(`huddle: network change (${reason})`);
    if (!this.inRoom || !this.network.online || this.network.addresses?.size === 0) return;
    this.client.refresh();
    for (const m of this.members.values()) m.link.recover();
  }

  /**
   * @param {string} name
   * @param {'left' | 'lost' | 'ended'} [why] for its file transfers: NAME left
   *   the call, its connection was made anew, or we left
   */
  #removeMember(name, why = 'left') {
    const m = this.members.get(name);
    if (!m) return;
    this.members.delete(name);
    this.files.detach(name, why);
    m.link.close();
    this.#emit('member-removed', { name });
    this.#resize();
  }

  #reset() {
    this.stopShare();
    for (const name of [...this.members.keys()]) this.#removeMember(name, 'ended');
    this.self = null;
    this.handRaisedAt = null;
    this.#admitting = [];
    if (this.knocks.length) this.#setKnocks([]);
    this.access = { host: null, locked: false, protected: false };
    clearInterval(this.#levelTimer);
    this.media.stopAudioMeter();
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
        // No energy counters for what we send (Firefox): listen to the microphone.
        local = Math.max(local, l.local === null ? this.media.audioLevel() : l.local);
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

  /**
   * Applies CHANGE to `access` and emits `access` if anything changed (or
   * ALWAYS). Knocks are the host's alone: a member who is no longer host
   * forgets them (a new host is sent a knock for everyone waiting).
   * @param {Partial<Room['access']>} change
   * @param {boolean} [always]
   */
  #setAccess(change, always = false) {
    const next = { ...this.access, ...change };
    const same = next.host === this.access.host && next.locked === this.access.locked && next.protected === this.access.protected;
    this.access = next;
    if (!this.isHost && this.knocks.length) {
      this.#admitting = [];
      this.#setKnocks([]);
    }
    if (!same || always) this.#emit('access', { ...next, joined: always });
  }

  /** @param {string[]} names */
  #setKnocks(names) {
    this.knocks = names;
    this.#emit('knocks', { names: [...names] });
  }

  /** Adapts capture and encodings to the call size, once per burst of changes. */
  #resize() {
    if (this.#resizeQueued) return;
    this.#resizeQueued = true;
    setTimeout(() => {
      this.#resizeQueued = false;
      const n = this.members.size;
      this.media.fitToCall(n);
      // Links made for this size already have it (and each setCallSize
      // waits for the WebRTC thread, busy with the offers just after a join).
      if (n === this.#sizedFor) return;
      this.#sizedFor = n;
      for (const m of this.members.values()) m.link.setCallSize(n);
    }, 0);
  }

  /** @returns {{type:'hand', up:boolean, at?:number}} */
  #handState() {
    return this.handRaisedAt === null ? { type: 'hand', up: false } : { type: 'hand', up: true, at: this.handRaisedAt };
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
