// @ts-check
/**
 * main.js — the entry point: builds the signaling client, the local media,
 * the room and the UI, and wires the page's lifetime (leave on unload).
 * `window.huddle` exposes these objects for diagnostics and for the
 * end-to-end tests (e.g. `await huddle.room.stats()`).
 */

import { Client } from './signaling.js';
import { LocalMedia } from './media.js';
import { Room } from './room.js';
import { UI } from './ui.js';

const client = new Client();
const media = new LocalMedia();
// `?relay=1`: send media only through TURN relays (to test a TURN server,
// or to hide one's addresses from the others).
const relayOnly = new URLSearchParams(location.search).get('relay') === '1';
const room = new Room({ client, media, iceTransportPolicy: relayOnly ? 'relay' : 'all' });
const ui = new UI({ room, media, client });

ui.start();

// The server's settings for the page (`--max-file-size`); the built-in
// defaults hold if they cannot be read.
fetch('/config.json', { cache: 'no-cache' })
  .then((r) => (r.ok ? r.json() : {}))
  .then((/** @type {{maxFileSize?: unknown}} */ cfg) => {
    if (Number.isSafeInteger(cfg.maxFileSize) && Number(cfg.maxFileSize) > 0) room.files.maxFileSize = Number(cfg.maxFileSize);
  })
  .catch(() => {});

// Opening the socket now saves a round trip when the person clicks Join.
// A failure here is silent: join() tries again and says what went wrong.
client.connect().catch(() => {});

// A closing tab leaves at once, so the others' tiles go away without
// waiting for the server to notice.
const bye = () => client.close();
addEventListener('beforeunload', bye);
addEventListener('pagehide', bye);
// Back from the back/forward cache: the call was left on the way out, so
// start from a fresh page rather than show a stale one.
addEventListener('pageshow', (e) => {
  if (e.persisted) location.reload();
});

Object.defineProperty(window, 'huddle', { value: Object.freeze({ client, media, room, ui }) });
