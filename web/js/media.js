// @ts-check
/**
 * media.js — the local camera and microphone. Asks for both, falls back to
 * audio only, then video only, then nothing (receive only), and says which
 * it got and why. The microphone and camera switches live here; a switched
 * off kind keeps its track (disabled) so switching back needs no new
 * permission, and peer.js stops sending it (see PeerLink.setLocalTrack).
 *
 * Events:
 * - `change` detail: `{audio, video, audioEnabled, videoEnabled}` whenever
 *   what is available or switched on changes.
 */

/**
 * @typedef {'ok'|'denied'|'missing'|'unsupported'|'busy'} MediaProblem
 * @typedef {{audio:boolean, video:boolean, problem:MediaProblem|null}} MediaResult
 */

/** Camera constraints: 720p when it can; each sender scales down further
 * with the call size (peer.js). */
const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24, max: 30 } };
/** From this many remote members on, capture at 360p: every member gets its
 * own encoding in a mesh, and none of them needs more. */
const SMALL_CAPTURE_FROM = 4;
const VIDEO_SMALL = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export class LocalMedia extends EventTarget {
  /** The stream sent to everyone (may hold 0, 1 or 2 tracks). */
  stream = new MediaStream();
  audioEnabled = true;
  videoEnabled = true;
  /** @type {MediaResult | null} */
  result = null;
  /** @type {Promise<MediaResult> | null} */
  #starting = null;
  #smallCapture = false;
  /** @type {{ctx: AudioContext, analyser: AnalyserNode, track: MediaStreamTrack, buf: Float32Array} | null} */
  #meter = null;

  /** @returns {MediaStreamTrack | null} */
  get audioTrack() {
    return this.stream.getAudioTracks()[0] || null;
  }

  /** @returns {MediaStreamTrack | null} */
  get videoTrack() {
    return this.stream.getVideoTracks()[0] || null;
  }

  /**
   * The track to send for KIND: the track when it exists and is switched on,
   * else null (nothing is sent).
   * @param {'audio'|'video'} kind
   * @returns {MediaStreamTrack | null}
   */
  activeTrack(kind) {
    if (kind === 'audio') return this.audioEnabled ? this.audioTrack : null;
    return this.videoEnabled ? this.videoTrack : null;
  }

  /**
   * Asks for camera and microphone once (later calls return the same
   * promise). Never rejects: the result says what was obtained.
   * @returns {Promise<MediaResult>}
   */
  start() {
    if (!this.#starting) this.#starting = this.#acquire();
    return this.#starting;
  }

  /** @returns {Promise<MediaResult>} */
  async #acquire() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return this.#done(null, 'unsupported');
    }
    /** @type {MediaProblem | null} */
    let problem = null;
    const attempts = [
      { audio: AUDIO, video: VIDEO },
      { audio: AUDIO, video: false },
      { audio: false, video: VIDEO },
    ];
    for (const constraints of attempts) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        return this.#done(stream, problem);
      } catch (e) {
        const name = e && typeof e === 'object' && 'name' in e ? String(e.name) : '';
        /** @type {MediaProblem} */
        const p =
          name === 'NotAllowedError' || name === 'SecurityError'
            ? 'denied'
            : name === 'NotReadableError' || name === 'AbortError'
              ? 'busy'
              : 'missing';
        // Keep the most telling reason: "denied" explains more than "missing".
        if (problem !== 'denied') problem = p;
      }
    }
    return this.#done(null, problem || 'missing');
  }

  /**
   * @param {MediaStream | null} stream
   * @param {MediaProblem | null} problem
   * @returns {MediaResult}
   */
  #done(stream, problem) {
    if (stream) {
      for (const t of stream.getTracks()) {
        this.stream.addTrack(t);
        // A device unplugged or a permission revoked ends the track: stop
        // offering it, and let the switches show it is gone.
        t.addEventListener('ended', () => {
          this.stream.removeTrack(t);
          this.#apply();
        });
      }
    }
    const audio = !!this.audioTrack;
    const video = !!this.videoTrack;
    this.result = { audio, video, problem: audio && video ? null : problem };
    this.#apply();
    return this.result;
  }

  /**
   * Captures less when the call is big (see SMALL_CAPTURE_FROM).
   * @param {number} peers remote members in the call
   */
  fitToCall(peers) {
    const small = peers >= SMALL_CAPTURE_FROM;
    const track = this.videoTrack;
    if (!track || small === this.#smallCapture) return;
    this.#smallCapture = small;
    track.applyConstraints(small ? VIDEO_SMALL : VIDEO).catch(() => {});
  }

  /**
   * The microphone's level now (0..1, linear: the peak of the last ~40 ms),
   * through Web Audio. For browsers whose WebRTC stats count no energy for
   * what is sent (Firefox's `media-source` has no `totalAudioEnergy`); the
   * stats are better where they exist, since they also count the sound
   * between two readings. 0 while the microphone is off or absent.
   * @returns {number}
   */
  audioLevel() {
    const track = this.activeTrack('audio');
    if (!track || typeof AudioContext !== 'function') return 0;
    if (!this.#meter || this.#meter.track !== track) {
      this.stopAudioMeter();
      try {
        const ctx = new AudioContext();
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 2048;
        ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
        this.#meter = { ctx, analyser, track, buf: new Float32Array(analyser.fftSize) };
      } catch {
        return 0;
      }
    }
    const m = this.#meter;
    if (m.ctx.state === 'suspended') m.ctx.resume().catch(() => {});
    m.analyser.getFloatTimeDomainData(m.buf);
    let peak = 0;
    for (const x of m.buf) peak = Math.max(peak, Math.abs(x));
    return peak;
  }

  /** Ends what audioLevel() set up (when the call ends). */
  stopAudioMeter() {
    if (!this.#meter) return;
    this.#meter.ctx.close().catch(() => {});
    this.#meter = null;
  }

  /** @param {boolean} on */
  setAudioEnabled(on) {
    this.audioEnabled = on;
    this.#apply();
  }

  /** @param {boolean} on */
  setVideoEnabled(on) {
    this.videoEnabled = on;
    this.#apply();
  }

  #apply() {
    const a = this.audioTrack;
    const v = this.videoTrack;
    if (a) a.enabled = this.audioEnabled;
    if (v) v.enabled = this.videoEnabled;
    this.dispatchEvent(
      new CustomEvent('change', {
        detail: { audio: !!a, video: !!v, audioEnabled: this.audioEnabled && !!a, videoEnabled: this.videoEnabled && !!v },
      }),
    );
  }
}
