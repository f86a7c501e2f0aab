// @ts-check
/**
 * quality.js — how good the connection to one member is, from `getStats`:
 * the path (direct or through the TURN relay), round-trip time, bitrate both
 * ways, packet loss, codecs, resolution and frame rate, measured between two
 * samples, and a grade (good / weak / bad) for the tile's indicator.
 * No DOM here; the grading is a pure function.
 */

/** Between two samples. */
export const SAMPLE_MS = 2000;

/**
 * @typedef {object} Quality
 * @property {'direct'|'nat'|'relay'|null} path how the media goes: host to
 *   host, through a NAT (a server-reflexive or peer-reflexive candidate), or
 *   through a TURN relay; null before a pair is chosen
 * @property {string} protocol udp or tcp (for the relay: the protocol to it)
 * @property {number | null} rttMs round-trip time of the chosen pair
 * @property {number} inKbps received, audio and video
 * @property {number} outKbps sent, audio and video
 * @property {number | null} loss share of received packets lost (0..1), null without packets
 * @property {string} videoCodec e.g. VP8 ('' when none)
 * @property {string} audioCodec e.g. opus
 * @property {number} width received video width (0: none)
 * @property {number} height received video height
 * @property {number | null} fps received frames per second
 * @property {'good'|'weak'|'bad'} grade
 */

/**
 * The grade of a connection: bad from 10 % loss, 600 ms round trip or (with
 * video on) under 5 fps; weak from 3 %, 250 ms or under 15 fps; else good.
 * Unknown values count as fine.
 * @param {{loss:number|null, rttMs:number|null, fps:number|null, video:boolean}} m
 * @returns {'good'|'weak'|'bad'}
 */
export function grade({ loss, rttMs, fps, video }) {
  const l = loss ?? 0;
  const r = rttMs ?? 0;
  const f = video && fps !== null ? fps : Infinity;
  if (l >= 0.1 || r >= 600 || f < 5) return 'bad';
  if (l >= 0.03 || r >= 250 || f < 15) return 'weak';
  return 'good';
}

/**
 * @typedef {{at:number, inBytes:number, outBytes:number, received:number, lost:number,
 *   frames:number}} Counters
 */

/**
 * Samples one RTCPeerConnection; `sample()` returns the figures since the
 * previous call.
 */
export class QualityProbe {
  /** @type {Counters | null} */
  #last = null;

  /** @param {RTCPeerConnection} pc */
  constructor(pc) {
    this.pc = pc;
  }

  /**
   * @param {boolean} videoExpected the member's camera is on
   * @returns {Promise<Quality>}
   */
  async sample(videoExpected) {
    const report = await this.pc.getStats();
    /** @type {Quality} */
    const q = {
      path: null, protocol: '', rttMs: null, inKbps: 0, outKbps: 0, loss: null,
      videoCodec: '', audioCodec: '', width: 0, height: 0, fps: null, grade: 'good',
    };
    const now = { at: performance.now(), inBytes: 0, outBytes: 0, received: 0, lost: 0, frames: 0 };
    /** @type {number | null} */
    let fpsReported = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = report.get(s.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId);
        const remote = pair && report.get(pair.remoteCandidateId);
        if (pair && typeof pair.currentRoundTripTime === 'number') q.rttMs = Math.round(pair.currentRoundTripTime * 1000);
        if (local && remote) {
          const types = [local.candidateType, remote.candidateType];
          q.path = types.includes('relay') ? 'relay' : types.some((t) => t === 'srflx' || t === 'prflx') ? 'nat' : 'direct';
          q.protocol = local.candidateType === 'relay' && local.relayProtocol ? local.relayProtocol : local.protocol || '';
        }
      }
      if (s.type === 'inbound-rtp') {
        now.inBytes += s.bytesReceived || 0;
        now.received += s.packetsReceived || 0;
        now.lost += Math.max(0, s.packetsLost || 0);
        const codec = s.codecId ? report.get(s.codecId) : null;
        const name = codec?.mimeType ? String(codec.mimeType).split('/')[1] || '' : '';
        if (s.kind === 'video') {
          q.videoCodec = name || q.videoCodec;
          q.width = Math.max(q.width, s.frameWidth || 0);
          q.height = Math.max(q.height, s.frameHeight || 0);
          now.frames += s.framesDecoded || 0;
          if (typeof s.framesPerSecond === 'number') fpsReported = s.framesPerSecond;
        } else if (s.kind === 'audio') {
          q.audioCodec = name || q.audioCodec;
        }
      }
      if (s.type === 'outbound-rtp') now.outBytes += s.bytesSent || 0;
    });
    const last = this.#last;
    this.#last = now;
    if (last && now.at > last.at) {
      const dt = (now.at - last.at) / 1000;
      q.inKbps = Math.max(0, Math.round(((now.inBytes - last.inBytes) * 8) / dt / 1000));
      q.outKbps = Math.max(0, Math.round(((now.outBytes - last.outBytes) * 8) / dt / 1000));
      const got = now.received - last.received;
      const lost = now.lost - last.lost;
      if (got + lost > 0) q.loss = Math.max(0, lost) / (got + Math.max(0, lost));
      q.fps = fpsReported ?? Math.round((now.frames - last.frames) / dt);
    }
    q.grade = grade({ loss: q.loss, rttMs: q.rttMs, fps: q.fps, video: videoExpected });
    return q;
  }
}
