// @ts-check
/**
 * chat.js — the chat log of one call. Messages travel over the peer data
 * channels as `{"type":"chat","text":TEXT,"sent":MILLIS}` (they never pass
 * through the server); the sender's name is the member the data channel
 * belongs to, never a field of the message. System lines ("X joined",
 * "X left") are local.
 *
 * Events:
 * - `entry` detail: a ChatEntry, appended to `entries`.
 * - `clear` the log was emptied (a new room).
 */

import { MAX_CHAT_ENTRIES, MAX_CHAT_TEXT } from './limits.js';

/**
 * @typedef {{kind:'chat', from:string, self:boolean, text:string, sent:number}
 *   | {kind:'system', event:'joined'|'left'|'you-joined', name:string, sent:number}
 *   | {kind:'file', key:string, from:string, self:boolean, sent:number}} ChatEntry
 * A `file` entry stands for the transfer `room.files.transfers.get(key)`.
 */

export class Chat extends EventTarget {
  /** @type {ChatEntry[]} */
  entries = [];

  /**
   * Builds the wire message for TEXT, or null if there is nothing to send.
   * @param {string} text
   * @returns {{type:'chat', text:string, sent:number} | null}
   */
  static message(text) {
    const t = String(text).trim().slice(0, MAX_CHAT_TEXT);
    if (!t) return null;
    return { type: 'chat', text: t, sent: Date.now() };
  }

  /**
   * Records a chat message (ours or a member's).
   * @param {string} from
   * @param {boolean} self
   * @param {unknown} msg a data-channel message of type `chat`
   */
  add(from, self, msg) {
    if (!msg || typeof msg !== 'object') return;
    const m = /** @type {{text?:unknown, sent?:unknown}} */ (msg);
    if (typeof m.text !== 'string' || !m.text) return;
    // Trust the sender's clock only within reason: it is shown as a time.
    const now = Date.now();
    const sent = typeof m.sent === 'number' && Number.isFinite(m.sent) && Math.abs(m.sent - now) < 86_400_000 ? m.sent : now;
    this.#push({ kind: 'chat', from, self, text: m.text.slice(0, MAX_CHAT_TEXT), sent });
  }

  /**
   * Records a system line.
   * @param {'joined'|'left'|'you-joined'} event
   * @param {string} name a member name, or the room for `you-joined`
   */
  system(event, name) {
    this.#push({ kind: 'system', event, name, sent: Date.now() });
  }

  /**
   * Records a file offered by us (SELF) or to us (see files.js).
   * @param {string} key the transfer's key
   * @param {string} from
   * @param {boolean} self
   */
  file(key, from, self) {
    this.#push({ kind: 'file', key, from, self, sent: Date.now() });
  }

  clear() {
    this.entries = [];
    this.dispatchEvent(new Event('clear'));
  }

  /** @param {ChatEntry} entry */
  #push(entry) {
    this.entries.push(entry);
    if (this.entries.length > MAX_CHAT_ENTRIES) this.entries.shift();
    this.dispatchEvent(new CustomEvent('entry', { detail: entry }));
  }
}
