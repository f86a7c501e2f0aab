// @ts-check
/**
 * peer.js — one RTCPeerConnection to one remote member (a `PeerLink`), with
 * perfect negotiation (W3C WebRTC §10.7, webrtc/samples
 * "perfect-negotiation"): `makingOffer`, `ignoreOffer`, `polite`.
 *
 * Roles, as the protocol says: the joiner offers to every member already in
 * the room. Its side is impolite (`polite = false`): it creates the
 * transceivers and the `sendDataChannel` data channel, and its offer wins a
 * collision. The existing member's side is polite: it waits for the offer,
 * puts its own tracks on the transceivers the offer created, and answers;
 * the data channel arrives through `ondatachannel`. Any later change (ICE
 * restart, a track replaced, a transceiver added) goes through
 * `negotiationneeded` on either side, and collisions resolve themselves.
 *
 * Switching the microphone or camera off uses `replaceTrack(null)`: the
 * sender stops sending RTP at all (a disabled track would still send
 * silence or black frames), without renegotiation.
 *
 * Screen share: the sharer adds a transceiver per screen track (video, and
 * audio when the browser captures it), `sendonly`, on a stream of its own,
 * after the camera's; stopping makes them `inactive` (and a new share
 * reuses them). On the receiving side the first transceiver of each kind is
 * the camera or microphone and any later one a screen: its tracks go to
 * `screenStream`.
 *
 * Events:
 * Recovery (docs/web-client.md "Network changes"): the link watches the
 * bytes arriving on its selected candidate pair (from the stats the room
 * polls for the speaking level, `audioLevels`); a busy link on which
 * nothing arrives for STALL_MS is `stalled`, well before the browser calls
 * it `disconnected`. The room then looks for a change of our own network
 * (network.js) and, if there is one, calls `recover()`, which restarts ICE
 * at once. Without such a sign a `disconnected` link restarts after a
 * delay, the impolite side first so that the two ends rarely both offer;
 * `failed` restarts at once. An offer that never got its answer (lost with
 * a dead socket) is rolled back and made again, or perfect negotiation
 * would wait for it forever.
 *
 * Events:
 * - `state`   detail `{state}`: `connecting`, `connected`, `reconnecting`, `failed`.
 * - `stalled` nothing arrives on a link that was busy (or it went
 *             `disconnected`); `flowing` when bytes arrive again.
 * - `track`   detail `{track}`: a remote track (also added to `remoteStream`).
 * - `screen-track` detail `{track}`: a remote screen track (in `screenStream`).
 * - `message` detail: a parsed data-channel message (an object with `type`).
 * - `open`    the data channel is open.
 * - `datachannel` detail `{channel}`: the member opened another data
 *             channel (a file transfer's, see files.js).
 * - `reset`   detail: an offer this connection cannot apply (the member
 *             started a new connection); the owner replaces the link.
 */

import { Bucket, DATA_BURST, DATA_RATE, MAX_DATA_MESSAGE } from './limits.js';
import { dtlsRole, keepDtlsRole } from './sdp.js';

/** Delay before a `disconnected` connection gets an ICE restart when our
 * network shows no sign of a change (it often recovers alone; the member
 * whose network changed restarts first): the impolite side, then the
 * polite side if the impolite one's restart has not come. */
const DISCONNECTED_RESTART_MS = { impolite: 1000, polite: 2500 };
/** Nothing received for this long on a busy link: `stalled`. */
const STALL_MS = 1000;
/** A link counts as busy from this many bytes a second received. */
const STALL_BUSY_BYTES_PER_S = 2000;
/** A stalled link that ICE still calls `connected` gets an ICE restart
 * after this long: Firefox can go on sending on a candidate pair of the
 * credentials before a restart, which the other end has dropped, so that
 * nothing arrives while both ends say connected. */
const STALLED_CONNECTED_RESTART_MS = 4000;
/** `recover()` does not restart again within this long of a restart. */
const RECOVER_GAP_MS = 2000;
/** An offer still unanswered after this long is taken back and made again. */
const OFFER_ANSWER_TIMEOUT_MS = 6000;
/** ICE restarts tried in a row after `failed` before giving up. */
const MAX_RESTARTS = 4;
/** Data-channel messages held until the channel opens. */
const CHANNEL_QUEUE_MAX = 100;
/** The first frames go out at most this tall. A 720p first frame at the
 * browser's start bitrate (about 300 kbit/s) is dropped by the encoder until
 * it has scaled itself down (Chromium: several frames, about 200 ms, then a
 * 320-wide picture for seconds). 360p passes at once. */
const START_MAX_HEIGHT = 360;
/** How long after connecting the start limit holds (the bandwidth estimate
 * has ramped up by then); then the call size's encoding applies alone. */
const START_HOLD_MS = 2000;

/** @typedef {'connecting'|'connected'|'reconnecting'|'failed'} LinkState */
/** @typedef {(type:'offer'|'answer'|'candidate', payload:{sdp?:string, candidate?:RTCIceCandidateInit|null}) => void} SignalFn */

/**
 * Video sending settings for a call with PEERS remote members: a mesh sends
 * one encoding per member, so each gets lighter as the call grows.
 * @param {number} peers
 * @returns {{maxBitrate:number, scaleResolutionDownBy:number, maxFramerate:number}}
 */
export function videoEncodingFor(peers) {
  if (peers <= 1) return { maxBitrate: 1_500_000, scaleResolutionDownBy: 1, maxFramerate: 30 };
  if (peers <= 3) return { maxBitrate: 700_000, scaleResolutionDownBy: 2, maxFramerate: 30 };
  if (peers <= 7) return { maxBitrate: 350_000, scaleResolutionDownBy: 1.5, maxFramerate: 15 };
  return { maxBitrate: 180_000, scaleResolutionDownBy: 2, maxFramerate: 12 };
}

/**
 * Screen-share sending settings for a call with PEERS remote members: text
 * stays sharp at a low frame rate, and a mesh sends one copy per member.
 * @param {number} peers
 * @returns {{maxBitrate:number, maxFramerate:number}}
 */
export function screenEncodingFor(peers) {
  if (peers <= 1) return { maxBitrate: 2_500_000, maxFramerate: 15 };
  if (peers <= 3) return { maxBitrate: 1_200_000, maxFramerate: 10 };
  return { maxBitrate: 600_000, maxFramerate: 5 };
}

/**
 * How much to scale TRACK down for the first frames (see START_MAX_HEIGHT).
 * @param {MediaStreamTrack | null} track
 * @returns {number}
 */
export function startScale(track) {
  const h = track?.getSettings?.().height || 0;
  return h > START_MAX_HEIGHT ? h / START_MAX_HEIGHT : 1;
}

export class PeerLink extends EventTarget {
  /** @type {LinkState} */
  state = 'connecting';
  /** Everything received from this member, for its tile. */
  remoteStream = new MediaStream();
  /** The member's screen share, when it shares. */
  screenStream = new MediaStream();
  /** @type {{audio: RTCRtpTransceiver | null, video: RTCRtpTransceiver | null}} ours, for sharing */
  #screenTx = { audio: null, video: null };
  makingOffer = false;
  ignoreOffer = false;
  /** @type {RTCDataChannel | null} */
  channel = null;
  /** Data-channel messages from this member dropped for size, rate or shape. */
  dropped = 0;
  #inbound = new Bucket(DATA_RATE, DATA_BURST);
  /** @type {{audio: RTCRtpTransceiver | null, video: RTCRtpTransceiver | null}} */
  #transceivers = { audio: null, video: null };
  /** @type {Promise<void>} incoming descriptions and candidates, in order */
  #chain = Promise.resolve();
  /** @type {string[]} */
  #queue = [];
  #restarts = 0;
  /** @type {number | undefined} */
  #restartTimer;
  /** @type {number | undefined} a restart for a link stalled while connected */
  #stallTimer;
  #everConnected = false;
  #closed = false;
  /** performance.now() of our last ICE restart (or the member's restart offer) */
  #lastRestart = -Infinity;
  /** @type {{at:number, bytes:number} | null} the last bytes-received sample */
  #flow = null;
  /** performance.now() when bytes last arrived, and whether the link was busy then */
  #lastGrowth = -Infinity;
  #busy = false;
  #stalled = false;
  /** @type {number | undefined} */
  #offerTimer;
  #peers = 1;
  /** @type {{remote: {e:number, d:number} | null, local: {e:number, d:number} | null}} */
  #energy = { remote: null, local: null };
  /** @type {Promise<void>} video sender parameter changes, in order */
  #parameters = Promise.resolve();
  /** The first frames are still limited to START_MAX_HEIGHT. */
  #starting = true;

  /**
   * @param {{name:string, polite:boolean, iceServers:RTCIceServer[],
   *   iceTransportPolicy?:RTCIceTransportPolicy,
   *   media:import('./media.js').LocalMedia, signal:SignalFn, callSize?:number, offerNow?:boolean,
   *   network?:{online:boolean, changedWithin:(ms?:number)=>boolean}}} options
   *   callSize: remote members in the call, to pick the video encoding up front;
   *   offerNow: false to make the first offer later, with offer();
   *   network: signs of our own network changing (network.js)
   */
  constructor({ name, polite, iceServers, iceTransportPolicy = 'all', media, signal, callSize = 1, offerNow = true, network }) {
    super();
    this.network = network || { online: true, changedWithin: () => false };
    this.#peers = callSize;
    this.name = name;
    this.polite = polite;
    this.media = media;
    this.signal = signal;
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy });
    const pc = this.pc;

    pc.onnegotiationneeded = () => this.#offer();
    pc.onicecandidate = ({ candidate }) => {
      this.signal('candidate', { candidate: candidate ? candidate.toJSON() : null });
    };
    pc.ontrack = ({ track, transceiver }) => {
      // The first transceiver of a kind is the camera or microphone; a
      // later one carries a screen share.
      const first = pc.getTransceivers().find((t) => t.receiver.track.kind === track.kind);
      const screen = !!first && first !== transceiver;
      const stream = screen ? this.screenStream : this.remoteStream;
      if (!stream.getTracks().includes(track)) stream.addTrack(track);
      this.dispatchEvent(new CustomEvent(screen ? 'screen-track' : 'track', { detail: { track } }));
    };
    pc.ondatachannel = ({ channel }) => {
      if (channel.label === 'sendDataChannel') this.#setChannel(channel);
      // Anything else is a file's channel (files.js), or closed there.
      else this.dispatchEvent(new CustomEvent('datachannel', { detail: { channel } }));
    };
    pc.onconnectionstatechange = () => this.#onConnectionState();
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState !== 'connected' || !this.#starting) return;
      setTimeout(() => {
        this.#starting = false;
        this.#applyVideoParameters();
      }, START_HOLD_MS);
    });

    if (!polite) {
      // The offerer adds its local tracks with addTrack. For a kind it has
      // no track for (no device, or switched off), it still lays out a
      // transceiver, so the other side can always send both.
      for (const kind of /** @type {const} */ (['audio', 'video'])) {
        const track = media.activeTrack(kind);
        if (track) {
          const sender = pc.addTrack(track, media.stream);
          this.#transceivers[kind] = pc.getTransceivers().find((t) => t.sender === sender) || null;
        } else {
          this.#transceivers[kind] = pc.addTransceiver(kind, {
            direction: 'sendrecv',
            streams: [media.stream],
          });
        }
      }
      // Start light in a big call rather than encode 720p and back off.
      // At once, not in a later microtask: Chromium's getParameters() waits
      // for the WebRTC thread, which will be busy making offers.
      this.#applyVideoParameters(true);
      this.#setChannel(pc.createDataChannel('sendDataChannel'));
      // Offer now rather than when `negotiationneeded` gets its turn: the
      // offer is built off the main thread while the page sets up the call
      // view. (The event then finds the state not stable and stays quiet.)
      // A joiner with several members makes every connection first and
      // then calls offer() on each (offerNow false): a connection made
      // while offers are being built waits for them at every step.
      if (offerNow) this.#offer();
    }
  }

  /** Makes and sends the first offer of a link made with `offerNow` false. */
  offer() {
    if (!this.polite && !this.makingOffer && this.pc.signalingState === 'stable' && !this.pc.localDescription) this.#offer();
  }

  /** Makes and sends an offer (perfect negotiation's `makingOffer` part). */
  async #offer() {
    if (this.#closed) return;
    const pc = this.pc;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      if (pc.localDescription && pc.localDescription.type === 'offer') {
        this.signal('offer', { sdp: pc.localDescription.sdp });
        // Recovery only: a first offer is the join path's, and a slow
        // answer to it must not meet a second offer.
        if (this.#everConnected) this.#watchAnswer(pc.localDescription.sdp);
      }
    } catch (e) {
      if (!this.#closed) console.warn(`huddle: offer to ${this.name} failed`, e);
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * If the offer SDP is still waiting for its answer after
   * OFFER_ANSWER_TIMEOUT_MS on a link that is not connected (or stalled),
   * roll it back and restart ICE (a new offer): the answer, or the offer
   * itself, was lost with a socket that died. (Should the old answer still
   * come after that, it is applied to the new offer and the ICE
   * credentials disagree until the next restart: rare, and recovered.)
   * @param {string} sdp
   */
  #watchAnswer(sdp) {
    clearTimeout(this.#offerTimer);
    this.#offerTimer = setTimeout(() => {
      this.#enqueue(async () => {
        const pc = this.pc;
        if (pc.signalingState !== 'have-local-offer' || pc.localDescription?.sdp !== sdp) return;
        // A link that works gets its answer late rather than never: leave it.
        if (pc.connectionState === 'connected' && !this.#stalled) return;
        console.info(`huddle: no answer from ${this.name}; offering again`);
        await pc.setLocalDescription({ type: 'rollback' });
        this.#lastRestart = performance.now();
        pc.restartIce();
      });
    }, OFFER_ANSWER_TIMEOUT_MS);
  }

  /**
   * Handles a relayed offer or answer (perfect negotiation).
   * @param {RTCSessionDescriptionInit} description
   */
  handleDescription(description) {
    this.#enqueue(async () => {
      const pc = this.pc;
      const offerCollision =
        description.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') return;
      if (description.type === 'answer') clearTimeout(this.#offerTimer);
      else if (pc.connectionState !== 'connected' || this.#stalled) {
        // The member is restarting: ours would only collide with it.
        clearTimeout(this.#restartTimer);
        this.#lastRestart = performance.now();
      }
      try {
        await pc.setRemoteDescription(description);
      } catch (e) {
        if (description.type === 'offer' && pc.currentRemoteDescription) {
          // A fresh connection from the same member (it left and came back
          // while we were away): this one cannot take it. Room replaces us.
          this.dispatchEvent(new CustomEvent('reset', { detail: description }));
          return;
        }
        throw e;
      }
      if (description.type === 'offer') {
        await this.#attachLocalTracks();
        const role = dtlsRole(pc.currentLocalDescription, pc.currentRemoteDescription);
        const answer = await pc.createAnswer();
        const sdp = keepDtlsRole(answer.sdp || '', role);
        if (sdp !== answer.sdp) console.info(`huddle: answer to ${this.name} keeps DTLS role ${role}`);
        await pc.setLocalDescription({ type: 'answer', sdp });
        if (pc.localDescription) this.signal('answer', { sdp: pc.localDescription.sdp });
        this.setCallSize(this.#peers);
      }
    });
  }

  /**
   * Handles a relayed ICE candidate; `null` means the end of candidates.
   * @param {RTCIceCandidateInit | null} candidate
   */
  handleCandidate(candidate) {
    this.#enqueue(async () => {
      try {
        if (candidate) await this.pc.addIceCandidate(candidate);
        else await this.pc.addIceCandidate();
      } catch (e) {
        if (!this.ignoreOffer && this.pc.remoteDescription) console.debug(`huddle: candidate from ${this.name}`, e);
      }
    });
  }

  /**
   * Sends what LocalMedia says should be sent for KIND (the track, or nothing
   * when switched off). Safe at any time; no renegotiation.
   *
   * Video also switches the encoding's `active` flag: Firefox keeps sending
   * about one frame a second on a sender whose track was replaced by null
   * (the others' framesDecoded keeps growing), Chromium does not. An
   * inactive encoding sends nothing in both.
   * @param {'audio'|'video'} kind
   */
  async updateLocalTrack(kind) {
    const t = this.#transceivers[kind];
    if (!t || this.#closed) return;
    try {
      await t.sender.replaceTrack(this.media.activeTrack(kind));
    } catch (e) {
      console.warn(`huddle: replaceTrack(${kind}) for ${this.name}`, e);
    }
    if (kind === 'video') await this.#applyVideoParameters();
  }

  /**
   * Sends STREAM's tracks as our screen share (null: stop sending it). The
   * first share adds transceivers (a renegotiation); later ones reuse them.
   * @param {MediaStream | null} stream
   */
  async setScreen(stream) {
    if (this.#closed) return;
    for (const kind of /** @type {const} */ (['video', 'audio'])) {
      const track = stream?.getTracks().find((t) => t.kind === kind) || null;
      let tx = this.#screenTx[kind];
      try {
        if (track && stream) {
          if (!tx) {
            tx = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
            this.#screenTx[kind] = tx;
          } else {
            await tx.sender.replaceTrack(track);
            if (typeof tx.sender.setStreams === 'function') tx.sender.setStreams(stream);
            tx.direction = 'sendonly';
          }
          if (kind === 'video') await this.#fitScreen();
        } else if (tx) {
          await tx.sender.replaceTrack(null);
          tx.direction = 'inactive';
        }
      } catch (e) {
        console.warn(`huddle: screen ${kind} for ${this.name}`, e);
      }
    }
  }

  /** The screen share's bitrate and frame rate for the call size. */
  async #fitScreen() {
    const tx = this.#screenTx.video;
    if (!tx || !tx.sender.track) return;
    try {
      const params = tx.sender.getParameters();
      if (!params.encodings || !params.encodings.length) return;
      Object.assign(params.encodings[0], screenEncodingFor(this.#peers));
      await tx.sender.setParameters(params);
    } catch (e) {
      console.debug(`huddle: screen setParameters for ${this.name}`, e);
    }
  }

  /**
   * Adapts the video sent to this member to the call size.
   * @param {number} peers number of remote members in the call
   */
  async setCallSize(peers) {
    const changed = peers !== this.#peers;
    this.#peers = peers;
    if (changed) this.#fitScreen();
    await this.#applyVideoParameters();
  }

  /**
   * Sets the video sender's encoding for the call size and whether the
   * camera is on, if it differs. One at a time: a `setParameters` that
   * overlaps another fails (its parameters are stale).
   * @param {boolean} [now] run at once (only when nothing is queued)
   */
  #applyVideoParameters(now = false) {
    const run = async () => {
      const t = this.#transceivers.video;
      if (!t || this.#closed) return;
      try {
        const params = t.sender.getParameters();
        // Before negotiation some browsers have no encodings yet; this runs
        // again once connected.
        if (!params.encodings || !params.encodings.length) return;
        const want = { ...videoEncodingFor(this.#peers), active: !!this.media.activeTrack('video') };
        if (this.#starting) want.scaleResolutionDownBy = Math.max(want.scaleResolutionDownBy, startScale(t.sender.track));
        const enc = params.encodings[0];
        if (
          enc.maxBitrate === want.maxBitrate &&
          enc.scaleResolutionDownBy === want.scaleResolutionDownBy &&
          enc.maxFramerate === want.maxFramerate &&
          (enc.active ?? true) === want.active
        ) return;
        Object.assign(enc, want);
        await t.sender.setParameters(params);
      } catch (e) {
        console.debug(`huddle: setParameters for ${this.name}`, e);
      }
    };
    // NOW (nothing queued yet): up to setParameters synchronously.
    this.#parameters = now ? run() : this.#parameters.then(run);
    return this.#parameters;
  }

  /**
   * Mean audio levels (0..1, linear) since the last call: what arrives from
   * this member, and what we send it (our microphone). From the energy
   * counters of `inbound-rtp` and `media-source`, so short sounds between
   * two calls count too. `local` is null when the browser's `media-source`
   * has no energy counters (Firefox): measure the microphone another way
   * (LocalMedia.audioLevel).
   * @param {boolean} [withLocal] also measure our microphone (one link is enough)
   * @returns {Promise<{remote:number, local:number|null}>}
   */
  async audioLevels(withLocal = true) {
    /** @type {{remote:number, local:number|null}} */
    const out = { remote: 0, local: 0 };
    const t = this.#transceivers.audio || this.pc.getTransceivers().find((x) => x.receiver.track.kind === 'audio');
    if (!t || this.#closed) return out;
    const level = (/** @type {'remote'|'local'} */ key, /** @type {any} */ s) => {
      const prev = this.#energy[key];
      this.#energy[key] = { e: s.totalAudioEnergy, d: s.totalSamplesDuration };
      const dd = s.totalSamplesDuration - (prev ? prev.d : 0);
      if (prev && dd > 0) out[key] = Math.sqrt(Math.max(0, s.totalAudioEnergy - prev.e) / dd);
    };
    const hasEnergy = (/** @type {any} */ s) => typeof s.totalAudioEnergy === 'number' && typeof s.totalSamplesDuration === 'number';
    try {
      const report = await t.receiver.getStats();
      report.forEach((s) => s.type === 'inbound-rtp' && hasEnergy(s) && level('remote', s));
      this.#noteFlow(report);
      if (withLocal && t.sender.track) {
        let counted = false;
        (await t.sender.getStats()).forEach((s) => {
          if (s.type === 'media-source' && hasEnergy(s)) {
            counted = true;
            level('local', s);
          }
        });
        if (!counted) out.local = null;
      } else {
        this.#energy.local = null;
      }
    } catch {
      /* closed meanwhile */
    }
    return out;
  }

  /**
   * Watches the bytes received on the selected candidate pair (REPORT: a
   * stats report that has the transport, as the receiver's has): a link
   * that was busy and receives nothing for STALL_MS is `stalled`.
   * @param {RTCStatsReport} report
   */
  #noteFlow(report) {
    /** @type {any} */
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
      // Firefox has no transport stats; its pairs say which one is selected.
      else if (s.type === 'candidate-pair' && s.selected === true && !pair) pair = s;
    });
    if (!pair || typeof pair.bytesReceived !== 'number') return;
    const at = performance.now();
    const bytes = pair.bytesReceived;
    const prev = this.#flow;
    this.#flow = { at, bytes };
    if (!prev || bytes < prev.bytes) return;
    if (bytes > prev.bytes) {
      this.#busy = ((bytes - prev.bytes) * 1000) / Math.max(1, at - prev.at) >= STALL_BUSY_BYTES_PER_S;
      this.#lastGrowth = at;
      if (this.#stalled) {
        this.#stalled = false;
        clearTimeout(this.#stallTimer);
        this.dispatchEvent(new Event('flowing'));
      }
    } else if (!this.#stalled && this.#busy && at - this.#lastGrowth >= STALL_MS) {
      this.#markStalled();
    }
  }

  #markStalled() {
    if (this.#stalled || this.#closed) return;
    this.#stalled = true;
    this.dispatchEvent(new Event('stalled'));
    clearTimeout(this.#stallTimer);
    this.#stallTimer = setTimeout(() => {
      // A network change or `disconnected` has its own restart.
      if (!this.#stalled || this.#closed || this.pc.connectionState !== 'connected') return;
      if (performance.now() - this.#lastRestart < RECOVER_GAP_MS) return;
      console.info(`huddle: nothing arrives from ${this.name} on a connected link; restarting ICE`);
      this.#restartIce();
    }, STALLED_CONNECTED_RESTART_MS);
  }

  /** @returns {boolean} nothing arrives on a link that was busy (or it is disconnected) */
  get stalled() {
    return this.#stalled;
  }

  /**
   * Our network changed, or the signaling socket came back: restart ICE now
   * if this link is not connected or stalled (unless a restart is a moment
   * old, or the browser is offline: `online` calls this again).
   */
  recover() {
    if (this.#closed) return;
    if (this.pc.connectionState === 'connected' && !this.#stalled) return;
    if (this.state === 'connecting' && !this.#everConnected) return;
    if (performance.now() - this.#lastRestart < RECOVER_GAP_MS) return;
    clearTimeout(this.#restartTimer);
    this.#restartIce();
  }

  /**
   * Sends a data-channel message (held until the channel opens).
   * @param {object} message an object with a `type`
   */
  send(message) {
    const text = JSON.stringify(message);
    const ch = this.channel;
    if (ch && ch.readyState === 'open') {
      try {
        ch.send(text);
        return;
      } catch (e) {
        console.warn(`huddle: data channel to ${this.name}`, e);
      }
    }
    if (this.#queue.length >= CHANNEL_QUEUE_MAX) this.#queue.shift();
    this.#queue.push(text);
  }

  /**
   * A summary of what arrives from this member, for tests and diagnostics.
   * @returns {Promise<{connectionState:string, audioTracks:number, videoTracks:number,
   *   audio:{packetsReceived:number, bytesReceived:number, totalAudioEnergy:number},
   *   video:{packetsReceived:number, bytesReceived:number, framesDecoded:number, frameWidth:number}}>}
   */
  async stats() {
    const out = {
      connectionState: this.pc.connectionState,
      audioTracks: 0,
      videoTracks: 0,
      audio: { packetsReceived: 0, bytesReceived: 0, totalAudioEnergy: 0 },
      video: { packetsReceived: 0, bytesReceived: 0, framesDecoded: 0, frameWidth: 0 },
      /** Data-channel messages from this member that were dropped (see limits.js). */
      dropped: this.dropped,
      /** The candidate pair in use: candidate types ('host', 'srflx', 'relay'…) and protocols. */
      path: /** @type {null | {local:string, remote:string, protocol:string, relayProtocol:string,
        localPort:number, remoteAddress:string, bytesSent:number, bytesReceived:number}} */ (null),
    };
    for (const r of this.pc.getReceivers()) {
      if (r.track && r.track.readyState === 'live') {
        if (r.track.kind === 'audio') out.audioTracks += 1;
        else out.videoTracks += 1;
      }
    }
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = report.get(s.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId);
        const remote = pair && report.get(pair.remoteCandidateId);
        if (local && remote) {
          out.path = {
            local: local.candidateType,
            remote: remote.candidateType,
            protocol: local.protocol,
            relayProtocol: local.relayProtocol || '',
            localPort: local.port || 0,
            remoteAddress: remote.address || '',
            bytesSent: pair.bytesSent || 0,
            bytesReceived: pair.bytesReceived || 0,
          };
        }
      }
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'audio') {
        out.audio.packetsReceived += s.packetsReceived || 0;
        out.audio.bytesReceived += s.bytesReceived || 0;
        // Energy of what was decoded and played out: grows only for sound.
        out.audio.totalAudioEnergy += s.totalAudioEnergy || 0;
      } else if (s.kind === 'video') {
        out.video.packetsReceived += s.packetsReceived || 0;
        out.video.bytesReceived += s.bytesReceived || 0;
        out.video.framesDecoded += s.framesDecoded || 0;
        out.video.frameWidth = Math.max(out.video.frameWidth, s.frameWidth || 0);
      }
    });
    return out;
  }

  /**
   * A new ordered, reliable data channel on this connection (a file's).
   * @param {string} label
   * @returns {RTCDataChannel}
   */
  openChannel(label) {
    return this.pc.createDataChannel(label, { ordered: true });
  }

  /** The largest data-channel message the other side takes (0: not known yet). */
  maxMessageSize() {
    const n = this.pc.sctp?.maxMessageSize;
    return typeof n === 'number' && Number.isFinite(n) ? n : 0;
  }

  /** Closes the connection for good. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#offerTimer);
    clearTimeout(this.#stallTimer);
    try { this.channel?.close(); } catch { /* ignore */ }
    this.pc.close();
    for (const t of this.remoteStream.getTracks()) t.stop();
  }

  /** @param {() => Promise<void>} op */
  #enqueue(op) {
    this.#chain = this.#chain
      .then(() => (this.#closed ? undefined : op()))
      .catch((e) => console.warn(`huddle: negotiation with ${this.name}`, e));
  }

  /**
   * On the polite side: put our tracks on the transceivers the remote offer
   * created (once per kind), so the answer sends them back.
   */
  async #attachLocalTracks() {
    for (const kind of /** @type {const} */ (['audio', 'video'])) {
      if (this.#transceivers[kind]) continue;
      const t = this.pc
        .getTransceivers()
        .find((x) => x.receiver.track.kind === kind && x.mid !== null && !x.currentDirection && x.direction !== 'stopped');
      if (!t) continue;
      this.#transceivers[kind] = t;
      t.direction = 'sendrecv';
      if (typeof t.sender.setStreams === 'function') t.sender.setStreams(this.media.stream);
      await t.sender.replaceTrack(this.media.activeTrack(kind));
    }
  }

  /** @param {RTCDataChannel} channel */
  #setChannel(channel) {
    if (this.channel && this.channel !== channel) {
      try { this.channel.close(); } catch { /* ignore */ }
    }
    this.channel = channel;
    channel.onopen = () => {
      const held = this.#queue;
      this.#queue = [];
      for (const text of held) {
        try { channel.send(text); } catch { /* ignore */ }
      }
      this.dispatchEvent(new Event('open'));
    };
    channel.onmessage = (ev) => {
      // The rate is checked first: a flood costs one comparison a message.
      if (!this.#inbound.take() || typeof ev.data !== 'string' || ev.data.length > MAX_DATA_MESSAGE) {
        this.dropped += 1;
        return;
      }
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        this.dropped += 1;
        return;
      }
      if (msg && typeof msg === 'object' && typeof msg.type === 'string') {
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
      } else {
        this.dropped += 1;
      }
    };
  }

  #onConnectionState() {
    const s = this.pc.connectionState;
    clearTimeout(this.#restartTimer);
    if (this.#closed || s === 'closed') return;
    if (s === 'connected') {
      this.#everConnected = true;
      this.#restarts = 0;
      this.#setState('connected');
      this.setCallSize(this.#peers);
    } else if (s === 'disconnected') {
      this.#setState('reconnecting');
      this.#markStalled();
      // Our own network changed: restart now. Otherwise give the member
      // (whose network may have changed) the first move.
      const delay = this.network.changedWithin() ? 0 : DISCONNECTED_RESTART_MS[this.polite ? 'polite' : 'impolite'];
      this.#restartTimer = setTimeout(() => {
        // Not again if we (or the member) restarted a moment ago.
        if (this.pc.connectionState === 'disconnected' && performance.now() - this.#lastRestart >= RECOVER_GAP_MS) this.#restartIce();
      }, delay);
    } else if (s === 'failed') {
      if (this.#restarts < MAX_RESTARTS) {
        this.#setState('reconnecting');
        this.#restartIce();
      } else {
        this.#setState('failed');
      }
    } else {
      this.#setState(this.#everConnected ? 'reconnecting' : 'connecting');
    }
  }

  #restartIce() {
    // Offline, a restart would gather no candidates: `online` brings recover().
    if (this.#closed || !this.network.online) return;
    this.#restarts += 1;
    this.#lastRestart = performance.now();
    this.pc.restartIce();
  }

  /** @param {LinkState} state */
  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }
}
