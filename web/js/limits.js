// @ts-check
/**
 * limits.js — what one member may send this page over the data channel,
 * and how much of it the page keeps. Every other member is an untrusted
 * peer: a modified client can send as fast and as large as the channel
 * allows, and none of it may freeze the tab or grow memory without bound.
 * Excess messages are dropped and counted per member (`link.dropped`,
 * shown in `huddle.room.stats()`), never queued.
 */

/** Largest data-channel message accepted from a member, in characters. */
export const MAX_DATA_MESSAGE = 64 * 1024;
/** Sustained data-channel messages per second accepted from one member. */
export const DATA_RATE = 20;
/** Messages one member may send at once above `DATA_RATE`. */
export const DATA_BURST = 60;
/** Longest chat text sent or shown, in characters; longer text is cut. */
export const MAX_CHAT_TEXT = 4000;
/** Chat entries kept in memory and on screen; the oldest go first. */
export const MAX_CHAT_ENTRIES = 500;

/** A token bucket: `take()` says whether one more message may pass now. */
export class Bucket {
  #tokens;
  #last;

  /**
   * @param {number} rate tokens per second
   * @param {number} burst bucket size
   * @param {() => number} [clock] milliseconds (tests pass their own)
   */
  constructor(rate, burst, clock = () => performance.now()) {
    this.rate = rate;
    this.burst = burst;
    this.clock = clock;
    this.#tokens = burst;
    this.#last = clock();
  }

  /** @returns {boolean} */
  take() {
    const now = this.clock();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
