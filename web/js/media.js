// @ts-check
/**
 * media.js — the local camera and microphone. Asks for both, falls back to
 * audio only, then video only, then nothing (receive only), and says which
 * it got and why. The microphone and camera switches live here; a switched
 * off kind keeps its track (disabled) so switching back needs no new
 * permission, and peer.js stops sending it (see PeerLink.setLocalTrack).
 *
 * Devices: the camera and microphone can be chosen (`useDevice`), and the
 * choice, the speaker and the noise-suppression switch are remembered in
 * localStorage for the next visit. A chosen device that goes away
 * (`devicechange`, or its track ends) gives way to the default one.
 *
 * Events:
 * - `change` detail: `{audio, video, audioEnabled, videoEnabled}` whenever
 *   what is available or switched on changes (a new device included).
 * - `devices` the list of devices changed (plugged or unplugged).
 * - `fallback` detail `{kind}`: the chosen `camera` or `microphone` went
 *   away and the default one is used instead.
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

/** localStorage key of the device choices. */
const PREFS_KEY = 'huddle.devices';

/**
 * @typedef {{camera:string, microphone:string, speaker:string, noiseSuppression:boolean}} DevicePrefs
 * @typedef {{camera:{id:string, label:string}[], microphone:{id:string, label:string}[],
 *   speaker:{id:string, label:string}[]}} DeviceList
 */

/** @returns {DevicePrefs} */
function loadPrefs() {
  /** @type {DevicePrefs} */
  const prefs = { camera: '', microphone: '', speaker: '', noiseSuppression: true };
  try {
    const v = JSON.parse(localStorage.getItem(PREFS_KEY) || '{}');
    for (const k of /** @type {const} */ (['camera', 'microphone', 'speaker'])) {
      if (typeof v[k] === 'string') prefs[k] = v[k];
    }
    if (typeof v.noiseSuppression === 'boolean') prefs.noiseSuppression = v.noiseSuppression;
  } catch {
    /* storage off or garbage: defaults */
  }
  return prefs;
}

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
  /** The remembered choices. */
  prefs = loadPrefs();
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
    const audio = this.#audioConstraints('', false);
    const video = this.#videoConstraints('', false);
    const attempts = [
      { audio, video },
      { audio, video: false },
      { audio: false, video },
    ];
    // The remembered devices first, exactly; if they are gone, the defaults.
    if (this.prefs.camera || this.prefs.microphone) {
      attempts.unshift({
        audio: this.#audioConstraints(this.prefs.microphone, true),
        video: this.#videoConstraints(this.prefs.camera, true),
      });
    }
    navigator.mediaDevices.addEventListener?.('devicechange', () => this.#onDeviceChange());
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
      for (const t of stream.getTracks()) this.#adopt(t);
    }
    const audio = !!this.audioTrack;
    const video = !!this.videoTrack;
    this.result = { audio, video, problem: audio && video ? null : problem };
    this.#apply();
    return this.result;
  }

  /**
   * Puts TRACK in the sent stream. A device unplugged or a permission
   * revoked ends it: the default device takes over if there is one, else
   * the kind is gone and the switches show it.
   * @param {MediaStreamTrack} t
   */
  #adopt(t) {
    this.stream.addTrack(t);
    t.addEventListener('ended', () => {
      if (!this.stream.getTracks().includes(t)) return;
      this.stream.removeTrack(t);
      this.#apply();
      this.#fallBack(t.kind === 'audio' ? 'microphone' : 'camera');
    });
  }

  /**
   * @param {string} deviceId '' for the default
   * @param {boolean} exact the device or nothing
   */
  #audioConstraints(deviceId, exact) {
    const c = { ...AUDIO, noiseSuppression: this.prefs.noiseSuppression };
    return deviceId ? { ...c, deviceId: exact ? { exact: deviceId } : { ideal: deviceId } } : c;
  }

  /**
   * @param {string} deviceId '' for the default
   * @param {boolean} exact the device or nothing
   */
  #videoConstraints(deviceId, exact) {
    const c = this.#smallCapture ? VIDEO_SMALL : VIDEO;
    return deviceId ? { ...c, deviceId: exact ? { exact: deviceId } : { ideal: deviceId } } : c;
  }

  #savePrefs() {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify(this.prefs));
    } catch {
      /* storage may be off */
    }
  }

  /**
   * The cameras, microphones and speakers, by label (a device without one,
   * before permission, gets a numbered name from LABEL).
   * @param {(kind:'camera'|'microphone'|'speaker', n:number) => string} label
   * @returns {Promise<DeviceList>}
   */
  async listDevices(label) {
    /** @type {DeviceList} */
    const out = { camera: [], microphone: [], speaker: [] };
    if (!navigator.mediaDevices?.enumerateDevices) return out;
    const kinds = /** @type {const} */ ({ videoinput: 'camera', audioinput: 'microphone', audiooutput: 'speaker' });
    for (const d of await navigator.mediaDevices.enumerateDevices()) {
      const kind = kinds[/** @type {keyof typeof kinds} */ (d.kind)];
      if (!kind || !d.deviceId) continue;
      // Chromium lists a "communications" alias of a real device (Windows);
      // its "default" entry stays: that is what an unchosen microphone uses.
      if (d.deviceId === 'communications') continue;
      out[kind].push({ id: d.deviceId, label: d.label || label(kind, out[kind].length + 1) });
    }
    return out;
  }

  /** The device a kind uses now ('' when unknown). @param {'camera'|'microphone'} kind */
  currentDevice(kind) {
    const t = kind === 'camera' ? this.videoTrack : this.audioTrack;
    return t?.getSettings().deviceId || '';
  }

  /**
   * Uses DEVICEID ('' = the default) for KIND from now on, and remembers it.
   * The new track replaces the old one in the sent stream; peer.js then
   * swaps it on every connection with replaceTrack (no renegotiation).
   * Resolves to false if the device cannot be opened (the old one stays).
   * @param {'camera'|'microphone'} kind
   * @param {string} deviceId
   * @param {boolean} [remember]
   * @param {boolean} [stopFirst] end the old track before opening the new
   *   one (Chromium gives a second track of one microphone the first one's
   *   audio processing while the first lives)
   * @returns {Promise<boolean>}
   */
  async useDevice(kind, deviceId, remember = true, stopFirst = false) {
    if (!navigator.mediaDevices?.getUserMedia) return false;
    const audio = kind === 'microphone';
    if (stopFirst) {
      const old = audio ? this.audioTrack : this.videoTrack;
      if (old) {
        this.stream.removeTrack(old);
        old.stop();
      }
    }
    let fresh;
    try {
      fresh = await navigator.mediaDevices.getUserMedia(
        audio ? { audio: this.#audioConstraints(deviceId, true) } : { video: this.#videoConstraints(deviceId, true) },
      );
    } catch {
      return false;
    }
    const track = fresh.getTracks()[0];
    if (!track) return false;
    const old = audio ? this.audioTrack : this.videoTrack;
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    this.#adopt(track);
    if (remember) {
      this.prefs[kind] = deviceId;
      this.#savePrefs();
    }
    if (this.result) this.result = { ...this.result, [audio ? 'audio' : 'video']: true };
    this.#apply();
    return true;
  }

  /**
   * Remembers the speaker (the page applies it with setSinkId).
   * @param {string} deviceId '' for the default
   */
  setSpeaker(deviceId) {
    this.prefs.speaker = deviceId;
    this.#savePrefs();
  }

  /**
   * Turns the browser's noise suppression on or off (echo cancellation and
   * automatic gain stay on), and remembers it.
   * @param {boolean} on
   */
  async setNoiseSuppression(on) {
    this.prefs.noiseSuppression = on;
    this.#savePrefs();
    const t = this.audioTrack;
    if (!t) return;
    try {
      await t.applyConstraints({ ...t.getConstraints(), noiseSuppression: on });
      if (t.getSettings().noiseSuppression === on) return;
    } catch {
      /* taken on a new track below */
    }
    // Chromium only changes audio processing on a new track, and only once
    // the old one is gone.
    const id = this.currentDevice('microphone') || this.prefs.microphone;
    if (!(await this.useDevice('microphone', id, false, true))) await this.useDevice('microphone', '', false);
  }

  /** Devices came or went: if the one in use is gone, the default takes over. */
  async #onDeviceChange() {
    this.dispatchEvent(new Event('devices'));
    if (!navigator.mediaDevices?.enumerateDevices) return;
    const present = new Set((await navigator.mediaDevices.enumerateDevices()).map((d) => d.deviceId));
    for (const kind of /** @type {const} */ (['camera', 'microphone'])) {
      const t = kind === 'camera' ? this.videoTrack : this.audioTrack;
      const id = t?.getSettings().deviceId;
      if (t && id && !present.has(id)) {
        this.stream.removeTrack(t);
        t.stop();
        this.#apply();
        await this.#fallBack(kind);
      }
    }
  }

  /**
   * The chosen KIND went away: use the default one if any, and say so.
   * @param {'camera'|'microphone'} kind
   */
  async #fallBack(kind) {
    if (await this.useDevice(kind, '', false)) {
      this.dispatchEvent(new CustomEvent('fallback', { detail: { kind } }));
    }
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
