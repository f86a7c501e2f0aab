// @ts-check
/**
 * network.js — signs that this device's own network changed (an interface
 * went down and up, the address moved), for the recovery of calls (room.js
 * and peer.js): `online`/`offline` events, `navigator.connection` changes,
 * and an address probe. Browsers fire no event when an address goes away on
 * an interface that stays up, so the probe gathers the host candidates of a
 * throw-away RTCPeerConnection and compares their addresses with those our
 * calls were using (`noteCandidate`). No DOM, no signaling.
 *
 * Events (`CustomEvent`):
 * - `change` detail `{reason}`: `online`, `offline`, `connection` or
 *   `address` (the probe found the addresses changed).
 */

/** How long a sign of a network change counts as recent. */
export const NETWORK_CHANGE_WINDOW_MS = 10_000;
/** Longest wait for a probe's host candidates. */
const PROBE_TIMEOUT_MS = 1500;

/**
 * The address and type of an ICE candidate line (`candidate:… typ host …`).
 * @param {string} line
 * @returns {{address:string, protocol:string, type:string} | null}
 */
export function parseCandidate(line) {
  const f = String(line || '').replace(/^a=/, '').trim().split(/\s+/);
  if (f.length < 8 || !/^candidate:/.test(f[0]) || f[6] !== 'typ') return null;
  return { address: f[4], protocol: f[2].toLowerCase(), type: f[7] };
}

/**
 * Whether two sets of host addresses differ.
 * @param {Set<string>} a
 * @param {Set<string>} b
 */
export function differ(a, b) {
  if (a.size !== b.size) return true;
  for (const x of a) if (!b.has(x)) return true;
  return false;
}

export class NetworkWatch extends EventTarget {
  /** performance.now() of the last sign of a change */
  #lastChange = -Infinity;
  /** @type {Set<string> | null} host addresses of our own candidates since
   * the last change (null: none seen yet, nothing to compare with) */
  #known = null;
  /** @type {Promise<boolean> | null} */
  #probing = null;
  /** @type {Set<string> | null} the last probe's addresses (null: none yet, or inconclusive) */
  addresses = null;

  /**
   * @param {{gather?: () => Promise<string[] | null>}} [opts] gather: the
   *   host addresses now (null: cannot tell); tests pass their own
   */
  constructor(opts = {}) {
    super();
    this.gather = opts.gather || gatherHostAddresses;
    if (typeof addEventListener === 'function') {
      addEventListener('online', () => this.#changed('online'));
      addEventListener('offline', () => this.#changed('offline'));
    }
    const conn = /** @type {any} */ (globalThis.navigator)?.connection;
    if (conn && typeof conn.addEventListener === 'function') {
      conn.addEventListener('change', () => this.#changed('connection'));
    }
  }

  /** @returns {boolean} false when the browser says it is offline */
  get online() {
    return globalThis.navigator?.onLine !== false;
  }

  /**
   * @param {number} [ms]
   * @returns {boolean} a sign of a change came within the last MS
   */
  changedWithin(ms = NETWORK_CHANGE_WINDOW_MS) {
    return performance.now() - this.#lastChange <= ms;
  }

  /**
   * Remembers the address of one of our own host candidates (what a call
   * uses), for `check()` to compare with.
   * @param {RTCIceCandidateInit | null} candidate
   */
  noteCandidate(candidate) {
    const c = candidate && candidate.candidate ? parseCandidate(candidate.candidate) : null;
    if (!c || c.type !== 'host' || c.protocol !== 'udp' || c.address.endsWith('.local')) return;
    if (!this.#known) this.#known = new Set();
    this.#known.add(c.address);
  }

  /**
   * Probes the host addresses and compares them with those our candidates
   * had: resolves true (and emits `change`) when they differ. One probe at a
   * time; concurrent callers share it. Inconclusive (no candidates seen yet,
   * mDNS names instead of addresses): false.
   * @returns {Promise<boolean>}
   */
  check() {
    if (!this.#probing) {
      this.#probing = this.#probe().finally(() => {
        this.#probing = null;
      });
    }
    return this.#probing;
  }

  async #probe() {
    let now;
    try {
      now = await this.gather();
    } catch {
      now = null;
    }
    if (!now) {
      this.addresses = null;
      return false;
    }
    const current = new Set(now);
    this.addresses = current;
    if (!this.#known || !differ(this.#known, current)) return false;
    this.#known = current;
    this.#changed('address');
    return true;
  }

  /** @param {string} reason */
  #changed(reason) {
    this.#lastChange = performance.now();
    // The browser's own word is newer than our last probe.
    if (reason !== 'address') this.addresses = null;
    this.dispatchEvent(new CustomEvent('change', { detail: { reason } }));
  }
}

/**
 * The host addresses a fresh RTCPeerConnection gathers now (UDP host
 * candidates). Null when it cannot tell: no RTCPeerConnection, or mDNS
 * names (`….local`) instead of addresses (no camera or microphone
 * permission), which differ from one connection to the next.
 * @returns {Promise<string[] | null>}
 */
export async function gatherHostAddresses() {
  if (typeof RTCPeerConnection !== 'function') return null;
  const pc = new RTCPeerConnection();
  /** @type {string[]} */
  const found = [];
  let mdns = false;
  try {
    const done = new Promise((resolve) => {
      const timer = setTimeout(resolve, PROBE_TIMEOUT_MS);
      pc.onicecandidate = ({ candidate }) => {
        if (!candidate) {
          clearTimeout(timer);
          resolve(undefined);
          return;
        }
        const c = parseCandidate(candidate.candidate);
        if (!c || c.type !== 'host' || c.protocol !== 'udp') return;
        if (c.address.endsWith('.local')) mdns = true;
        else if (!found.includes(c.address)) found.push(c.address);
      };
    });
    pc.createDataChannel('probe');
    await pc.setLocalDescription();
    await done;
  } finally {
    pc.close();
  }
  return mdns ? null : found;
}
