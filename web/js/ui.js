// @ts-check
/**
 * ui.js — the only module that touches the DOM. It renders the join page
 * (form, camera preview, errors) and the call view (video grid, control bar,
 * chat and people panel), and turns clicks and keys into calls on Room and
 * LocalMedia. Every name and chat text goes in with `textContent`, never as
 * HTML. Every string a person reads comes from `S` (strings.js: the locale
 * files in web/i18n).
 *
 * Test hooks (kept stable): `form#join` with `input[name=name]`,
 * `input[name=room]` and (when a room asks for one) `input[name=password]`;
 * tiles `[data-peer=NAME]` with a `<video>`, the own one also `[data-self]`,
 * the host's `[data-host]`; people list items `li[data-peer=NAME]` (host:
 * `[data-host]`) with, for the host, `[data-action=ask-mute|remove]`;
 * `form#chat` with `input[name=text]`; chat entries `[data-from=NAME]`;
 * buttons `[data-action=mute|camera|leave|room-menu]`; the room menu's
 * `input[name=room-password]`, `[data-action=set-password|clear-password|
 * lock-room]`; knocks `[data-knock=NAME]` with `[data-action=admit|deny]`;
 * `[data-action=stop-waiting]`; files: `[data-action=send-file]` with
 * `input[type=file][name=file]`, chat entries `[data-file=KEY]` (with
 * `data-direction`, `data-state`) holding `[data-action=accept-file|
 * decline-file|cancel-file]` and, once received, `a[download]`;
 * `#call-view[data-protected]` and
 * `[data-locked]`; the join page's `[data-action=test-connection]` and its
 * result `[data-connection-test]` (`data-state` running|done, then
 * `data-verdict` direct|relay|failed and `data-advice`; items
 * `li[data-kind][data-found]`, `[data-rtt]`); and on `<body>`: `data-view` (join|waiting|call) and
 * `data-signaling` (the socket state). See docs/web-client.md.
 */

import { MAX_CHAT_ENTRIES, MAX_CHAT_TEXT } from './limits.js';
import { LANGUAGES, S, language, setLanguage } from './strings.js';
import { checkName, checkRoom } from './signaling.js';
import { randomRoomName } from './roomname.js';
import { accessFromPage, addressWithoutAccess, explainUnauthorized, readClaims } from './access.js';
import { REACTIONS } from './room.js';
import { QualityProbe, SAMPLE_MS } from './quality.js';
import { isFinal, overallState } from './files.js';
import { fetchIceServers, resultRows, runConnectionTest } from './conntest.js';

/** The end of a screen share tile's key: `NAME` + this (names hold no NUL). */
const SCREEN_KEY = '\u0000screen';

/** How long a reaction floats over its sender's tile. */
const REACTION_MS = 4000;
/** At most this many reactions float over one tile at once; more are dropped. */
const MAX_FLOATING_REACTIONS = 6;

const NAME_KEY = 'huddle.name';
const SVG_NS = 'http://www.w3.org/2000/svg';
/** Below this width the grid is one column and the side panel a sheet. */
const NARROW_PX = 640;
const GAP_PX = 10;

/**
 * @template {Element} T
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {T}
 */
function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`ui: missing ${selector}`);
  return /** @type {T} */ (el);
}

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * An element showing a member name, isolated from the text around it.
 * @param {string} tag
 * @param {string} className
 * @param {string} name
 * @returns {HTMLElement}
 */
function nameEl(tag, className, name) {
  const e = el(tag, className, name);
  e.dir = 'auto';
  return e;
}

/**
 * A name to put inside a sentence, between Unicode's first-strong isolate
 * and pop-directional isolate (what `<bdi>` does for an element).
 * @param {string} name
 * @returns {string}
 */
function isolate(name) {
  return `\u2068${name}\u2069`;
}

/**
 * An inline icon from the sprite in index.html.
 * @param {string} id symbol id without `#`
 * @param {string} [className]
 * @returns {SVGSVGElement}
 */
function icon(id, className = '') {
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG_NS, 'svg'));
  svg.setAttribute('class', `icon ${className}`.trim());
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#${id}`);
  svg.append(use);
  return svg;
}

/**
 * A small button on a tile's corner, labelled (aria-label and tooltip).
 * @param {string} action its data-action
 * @param {string} iconId
 * @param {string} label
 * @returns {HTMLButtonElement}
 */
function tileButton(action, iconId, label) {
  const b = /** @type {HTMLButtonElement} */ (el('button', 'tile-button'));
  b.type = 'button';
  b.dataset.action = action;
  b.setAttribute('aria-label', label);
  b.setAttribute('title', label);
  b.append(icon(iconId));
  return b;
}

/**
 * Wires a menu that BUTTON opens above the control bar: the button toggles
 * it (FILL runs first, to make or label the items), the first item gets the
 * focus, arrow keys move (Up/Down, and Left/Right too when SIDEWAYS),
 * Escape closes it with the focus back on the button, and a press outside
 * WRAP closes it. Returns `close(focusButton)`.
 * @param {HTMLButtonElement} button
 * @param {HTMLElement} menu
 * @param {string} wrap selector of the element holding button and menu
 * @param {boolean} sideways
 * @param {() => void} fill
 * @returns {(focusButton: boolean) => void}
 */
function popupMenu(button, menu, wrap, sideways, fill) {
  const close = (/** @type {boolean} */ focusButton) => {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (focusButton) button.focus();
  };
  button.addEventListener('click', () => {
    if (!menu.hidden) return close(false);
    fill();
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    /** @type {HTMLElement | null} */ (menu.querySelector('button'))?.focus();
  });
  menu.addEventListener('keydown', (e) => {
    const items = /** @type {HTMLElement[]} */ ([...menu.querySelectorAll('button')]);
    const i = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (e.key === 'Escape') {
      e.stopPropagation();
      close(true);
    } else if (e.key === 'ArrowDown' || (sideways && e.key === 'ArrowRight')) {
      e.preventDefault();
      items[(i + 1) % items.length]?.focus();
    } else if (e.key === 'ArrowUp' || (sideways && e.key === 'ArrowLeft')) {
      e.preventDefault();
      items[(i - 1 + items.length) % items.length]?.focus();
    }
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !(/** @type {Element} */ (e.target)).closest(wrap)) close(false);
  });
  return close;
}

/**
 * The first character of a name, for avatars.
 * @param {string} name
 */
function initial(name) {
  return ([...name.trim()][0] || '?').toLocaleUpperCase();
}

/**
 * A stable hue per name, for avatars.
 * @param {string} name
 */
function hue(name) {
  let h = 0;
  for (const ch of name.toLowerCase()) h = (h * 31 + (ch.codePointAt(0) || 0)) % 360;
  return String(h);
}

const BYTE_UNITS = ['byte', 'kilobyte', 'megabyte', 'gigabyte', 'terabyte'];

/**
 * A size for people: 1024-based, in the page's language ("3.2 MB", "3,2 МБ").
 * @param {number} bytes
 */
function formatBytes(bytes) {
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < BYTE_UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || n >= 10 ? 0 : 1;
  return new Intl.NumberFormat(language(), {
    style: 'unit',
    unit: BYTE_UNITS[unit],
    unitDisplay: 'short',
    maximumFractionDigits: digits,
  }).format(n);
}

/**
 * A share as a percentage in the page's language ("45%", "45 %").
 * @param {number} part
 * @param {number} whole
 */
function formatPercent(part, whole) {
  const r = whole > 0 ? Math.min(1, part / whole) : 1;
  return new Intl.NumberFormat(language(), { style: 'percent', maximumFractionDigits: 0 }).format(Math.floor(r * 100) / 100);
}

/** One formatter for all chat times (making one per call is slow), made
 * again when the page's language changes. */
let CLOCK = new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' });

/** @param {number} millis */
function clock(millis) {
  if (CLOCK.resolvedOptions().locale.split('-')[0] !== language()) {
    CLOCK = new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' });
  }
  return CLOCK.format(millis);
}

/**
 * Wraps FN so that any number of calls within one frame run it once, on the
 * next frame (many changes come in one burst).
 * @param {() => void} fn
 * @returns {() => void}
 */
function oncePerFrame(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

/**
 * The room named in the address (`/r/<room>`), if any.
 * @returns {string}
 */
function roomFromPath() {
  const m = /^\/r\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

/** @param {string} room */
function roomUrl(room) {
  return `${location.origin}/r/${encodeURIComponent(room)}`;
}

/**
 * The grid for N tiles of 16:9 in a W×H area: ceil(sqrt(n)) columns on wide
 * screens, as large as fits without scrolling; one column on narrow ones
 * (the grid scrolls there once more than three tiles do not fit).
 * @param {number} n
 * @param {number} W
 * @param {number} H
 * @returns {{narrow:boolean, cols:number, rows:number, width:number}}
 */
export function gridLayout(n, W, H) {
  const narrow = W < NARROW_PX;
  // Phones: two columns from three tiles on, so six fit a 390×844 screen.
  const cols = narrow ? (n >= 3 ? 2 : 1) : Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const byWidth = (W - GAP_PX * (cols - 1)) / cols;
  const byHeight = ((H - GAP_PX * (rows - 1)) / rows) * (16 / 9);
  // Past six on a phone the grid scrolls rather than shrink the tiles.
  const width = narrow && n > 6 ? byWidth : Math.min(byWidth, byHeight);
  return { narrow, cols, rows, width: Math.max(80, Math.floor(width)) };
}

/**
 * Sizes for a pinned tile and the strip of the others under it, in a grid
 * of W×H px holding N tiles: the strip's tiles share one row (at most
 * 220 px each), the pinned one takes what is left, 16:9.
 * @param {number} n
 * @param {number} W
 * @param {number} H
 * @returns {{pinned:number, strip:number}}
 */
export function pinLayout(n, W, H) {
  const others = Math.max(1, n - 1);
  const strip = Math.max(64, Math.min(220, Math.floor((W - GAP_PX * (others - 1)) / others)));
  const stripH = (strip * 9) / 16;
  const pinned = Math.max(80, Math.floor(Math.min(W, (H - stripH - GAP_PX) * (16 / 9))));
  return { pinned, strip };
}

/** The server's limit on a room password (protocol: longer is `bad-message`). */
const MAX_PASSWORD_BYTES = 256;

/** @param {string} s */
function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/**
 * The error code of a rejected join (a SignalingError), or ''.
 * @param {unknown} err
 */
function codeOf(err) {
  return err && typeof err === 'object' && 'code' in err ? String(err.code) : '';
}

/**
 * @typedef {{el:HTMLElement, video:HTMLVideoElement, state:HTMLElement,
 *   stateTimer?:number}} Tile
 */

/**
 * The join page's connection test as shown: running, or done with a
 * verdict and an advice code (conntest.js's, or `needs-invitation`,
 * `access-expired|room|invalid`, `unreachable`, `no-webrtc`, `bad-config`).
 * @typedef {{state:'running'} | {state:'done', verdict:'direct'|'relay'|'failed', advice:string,
 *   ports?:string, room?:string, rows?:ReturnType<typeof resultRows>,
 *   roundTrip?:import('./conntest.js').RoundTrip}} NetTest
 */

export class UI {
  /** @type {Map<string, Tile>} tiles by member name; the own one under '' */
  #tiles = new Map();
  /** @type {string | null} the tile the person pinned ('' = ours), if any */
  #pinned = null;
  /** The person unpinned the spotlighted screen share: no spotlight until a new share. */
  #noSpotlight = false;
  /** @type {Map<string, QualityProbe>} getStats samplers by member name */
  #probes = new Map();
  /** @type {Map<string, import('./quality.js').Quality>} the latest sample by member name */
  #quality = new Map();
  #sampling = false;
  #unread = 0;
  /** @type {'chat'|'people'|null} */
  #panel = null;
  /** @type {number | undefined} */
  #toastTimer;
  /** @type {number | undefined} */
  #copyTimer;
  #joining = false;
  /** The operator token from the link (or kept by this tab), '' if none. */
  #access = '';
  /** The room the join form's password field was asked for ('' = hidden). */
  #passwordFor = '';
  /** The room the move dialog's password field was asked for. */
  #movePasswordFor = '';
  /** Where focus was before the room menu opened. */
  /** @type {HTMLElement | null} */
  #menuReturn = null;
  /** @type {Map<string, HTMLElement>} knock cards by name, in order */
  #knockEls = new Map();
  /** Sizes the tiles on the next frame. */
  #layout = oncePerFrame(() => this.#layoutNow());
  /** Redraws the people list on the next frame. */
  #renderPeople = oncePerFrame(() => this.#renderPeopleNow());
  /** @type {import('./chat.js').ChatEntry[]} chat entries not on screen yet (see #appendChat) */
  #pendingChat = [];
  /** Puts the pending chat entries on screen on the next frame. */
  #flushChat = oncePerFrame(() => this.#flushChatNow());
  /** @type {Map<string, HTMLElement>} file entries in the chat, by transfer key */
  #fileEls = new Map();
  /** @type {NetTest | null} the join page's connection test, once started */
  #netTest = null;

  /**
   * @param {{room: import('./room.js').Room, media: import('./media.js').LocalMedia,
   *   client: import('./signaling.js').Client}} deps
   */
  constructor({ room, media, client }) {
    this.room = room;
    this.media = media;
    this.client = client;
    this.body = document.body;
    this.joinForm = /** @type {HTMLFormElement} */ ($('form#join'));
    this.nameInput = /** @type {HTMLInputElement} */ ($('input[name=name]', this.joinForm));
    this.roomInput = /** @type {HTMLInputElement} */ ($('input[name=room]', this.joinForm));
    this.joinButton = /** @type {HTMLButtonElement} */ ($('#join-button'));
    this.grid = /** @type {HTMLElement} */ ($('#grid'));
    this.messages = /** @type {HTMLOListElement} */ ($('#messages'));
    this.chatForm = /** @type {HTMLFormElement} */ ($('form#chat'));
    this.chatInput = /** @type {HTMLInputElement} */ ($('input[name=text]', this.chatForm));
    this.chatInput.maxLength = MAX_CHAT_TEXT;
    this.fileInput = /** @type {HTMLInputElement} */ ($('input[name=file]', this.chatForm));
    this.dialog = /** @type {HTMLDialogElement} */ ($('#room-dialog'));
    this.roomMenu = /** @type {HTMLDialogElement} */ ($('#room-menu'));
    this.passwordField = /** @type {HTMLElement} */ ($('#password-field'));
    this.passwordInput = /** @type {HTMLInputElement} */ ($('input[name=password]', this.joinForm));
    this.callView = /** @type {HTMLElement} */ ($('#call-view'));
  }

  /** Fills in the strings, wires every control and shows the join page. */
  start() {
    this.#translate();
    this.#initJoin();
    this.#initCall();
    this.#wireRoom();
    this.#renderMediaControls();
    this.body.dataset.signaling = this.client.state;
    new ResizeObserver(() => this.#layout()).observe(this.grid);
    setInterval(() => this.#sampleQuality(), SAMPLE_MS);
    addEventListener('keydown', (e) => this.#onKey(e));
  }

  // ---------------------------------------------------------------- strings

  #translate() {
    const s = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (S));
    for (const e of document.querySelectorAll('[data-i18n]')) {
      const v = s[/** @type {HTMLElement} */ (e).dataset.i18n || ''];
      if (typeof v === 'string') e.textContent = v;
    }
    for (const e of document.querySelectorAll('[data-i18n-label]')) {
      const v = s[/** @type {HTMLElement} */ (e).dataset.i18nLabel || ''];
      if (typeof v === 'string') {
        e.setAttribute('aria-label', v);
        // Round buttons show their label as a CSS tooltip instead.
        if (!e.classList.contains('round')) e.setAttribute('title', v);
      }
    }
    for (const e of document.querySelectorAll('[data-i18n-placeholder]')) {
      const v = s[/** @type {HTMLElement} */ (e).dataset.i18nPlaceholder || ''];
      if (typeof v === 'string') e.setAttribute('placeholder', v);
    }
  }

  // -------------------------------------------------------------- join page

  #initJoin() {
    const room = roomFromPath();
    if (room) {
      this.roomInput.value = room;
      $('#join-title').textContent = S.joinRoomTitle(room);
    }
    try {
      this.nameInput.value = localStorage.getItem(NAME_KEY) || '';
    } catch {
      /* storage may be off */
    }
    // An invitation link may fix the name (its token's `name` claim).
    this.#access = accessFromPage();
    const claimed = this.#access ? readClaims(this.#access)?.name : undefined;
    if (claimed) this.nameInput.value = claimed;
    // A shared link (/r/<room>) asks for the name only; Enter joins.
    if (room || !this.nameInput.value) {
      this.nameInput.focus();
      this.nameInput.select();
    } else {
      this.roomInput.focus();
    }

    this.joinForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submitJoin();
    });
    // main.js opens the socket on page load, but the server closes one that
    // has not joined within --join-timeout (30 s): open it again as soon as
    // the person comes back to the tab or the form, so Join does not wait
    // for it.
    const warm = () => {
      const s = this.client.state;
      if (!this.room.inRoom && (s === 'idle' || s === 'closed')) this.client.connect().catch(() => {});
    };
    this.joinForm.addEventListener('focusin', warm);
    this.joinForm.addEventListener('input', warm);
    addEventListener('focus', warm);
    for (const input of [this.nameInput, this.roomInput, this.passwordInput]) {
      input.addEventListener('input', () => this.#fieldError(input, ''));
    }
    // The password field belongs to the room that asked for it.
    this.roomInput.addEventListener('input', () => {
      const room = checkRoom(this.roomInput.value);
      this.passwordField.hidden = !this.#passwordFor || !room.ok || room.value !== this.#passwordFor;
    });
    $('[data-action=stop-waiting]').addEventListener('click', () => this.room.stopWaiting());
    $('[data-action=preview-mute]').addEventListener('click', () => this.#toggleMic());
    $('[data-action=preview-camera]').addEventListener('click', () => this.#toggleCamera());
    this.#initSettings();
    $('[data-action=test-connection]').addEventListener('click', () => this.#testConnection());

    const preview = /** @type {HTMLVideoElement} */ ($('#preview'));
    this.media.addEventListener('change', () => this.#renderMediaControls());
    this.media.start().then((r) => {
      // Only a stream with a track: an empty one would hold the page's
      // load event forever (a media element delays it until it has data).
      if (r.video) {
        preview.srcObject = this.media.stream;
        preview.play().catch(() => {});
      }
      this.#renderMediaNote();
      this.#renderMediaControls();
    });
    this.#initLanguage();
  }

  /** The note under the preview: what the page could not get. */
  #renderMediaNote() {
    const r = this.media.result;
    if (!r) return;
    let text = '';
    if (r.problem === 'unsupported') text = S.mediaUnsupported;
    else if (!r.audio && !r.video) text = r.problem === 'denied' ? S.mediaDenied : S.mediaNone;
    else if (!r.video) text = r.problem === 'denied' ? S.mediaDeniedAudioOnly : S.mediaAudioOnly;
    else if (!r.audio) text = S.mediaVideoOnly;
    $('#media-note').textContent = text;
  }

  /** The language switch on the join page: each language in its own name. */
  #initLanguage() {
    const select = /** @type {HTMLSelectElement} */ ($('select[name=lang]'));
    for (const [code, { name }] of Object.entries(LANGUAGES)) {
      const option = new Option(name, code);
      option.lang = code;
      select.append(option);
    }
    select.value = language();
    select.addEventListener('change', () => {
      const code = select.value;
      if (!Object.hasOwn(LANGUAGES, code)) return;
      setLanguage(/** @type {keyof typeof LANGUAGES} */ (code));
      this.#translate();
      const room = roomFromPath();
      if (room) $('#join-title').textContent = S.joinRoomTitle(room);
      this.#renderMediaNote();
      this.#renderNetTest();
      this.#renderMediaControls();
      this.#renderHands();
      this.#renderShare();
    });
  }

  // -------------------------------------------------------- connection test

  /**
   * "Test connection" (conntest.js): the ICE servers from the server (for
   * the room in the form and the invitation token, when there are), then
   * gathering and the relay round trip; the result stays until the next run.
   */
  async #testConnection() {
    if (this.#netTest?.state === 'running') return;
    this.#netTest = { state: 'running' };
    this.#renderNetTest();
    /** @type {NetTest} */
    let done;
    try {
      done = await this.#netTestOutcome();
    } catch {
      done = { state: 'done', verdict: 'failed', advice: 'bad-config' };
    }
    this.#netTest = done;
    this.#renderNetTest();
  }

  /** @returns {Promise<NetTest>} */
  async #netTestOutcome() {
    /** @param {string} advice */
    const failed = (advice) => /** @type {NetTest} */ ({ state: 'done', verdict: 'failed', advice });
    if (typeof RTCPeerConnection !== 'function') return failed('no-webrtc');
    const typed = checkRoom(this.roomInput.value);
    const claimed = this.#access ? readClaims(this.#access)?.room : undefined;
    const room = typed.ok ? typed.value : claimed && claimed !== '*' ? claimed : '';
    const got = await fetchIceServers({ room, access: this.#access });
    if (!got.ok) {
      if (got.error !== 'unauthorized') return failed('unreachable');
      const why = explainUnauthorized(this.#access, readClaims(this.#access)?.name ?? '', room).why;
      return { ...failed(why === 'missing' ? 'needs-invitation' : `access-${why === 'name' ? 'invalid' : why}`), room };
    }
    const r = await runConnectionTest({ RTCPeerConnection, iceServers: got.iceServers });
    return {
      state: 'done', verdict: r.verdict, advice: r.advice, ports: r.ports,
      rows: resultRows(r), roundTrip: r.roundTrip,
    };
  }

  /** The result area of the connection test, in the page's language. */
  #renderNetTest() {
    const t = this.#netTest;
    if (!t) return;
    const area = /** @type {HTMLElement} */ ($('[data-connection-test]'));
    const button = /** @type {HTMLButtonElement} */ ($('[data-action=test-connection]'));
    const running = t.state === 'running';
    area.hidden = false;
    area.dataset.state = t.state;
    area.setAttribute('aria-busy', String(running));
    button.setAttribute('aria-disabled', String(running));
    $('#conn-test-label').textContent = running ? S.netTesting : S.netTest;
    const list = $('#conn-kinds');
    const rtt = /** @type {HTMLElement} */ ($('#conn-rtt'));
    const advice = $('#conn-advice');
    list.replaceChildren();
    rtt.hidden = true;
    delete rtt.dataset.rtt;
    if (t.state === 'running') {
      delete area.dataset.verdict;
      delete area.dataset.advice;
      $('#conn-test-title').textContent = S.netTitleRunning;
      advice.textContent = S.netRunningHint;
      return;
    }
    area.dataset.verdict = t.verdict;
    area.dataset.advice = t.advice;
    $('#conn-test-title').textContent = S.netTitle[t.advice === 'no-servers' ? 'noServers' : t.verdict];
    for (const row of t.rows ?? []) {
      const li = document.createElement('li');
      li.dataset.kind = row.kind;
      li.dataset.found = String(row.found);
      const name = document.createElement('span');
      name.className = 'conn-kind';
      name.textContent = S.netKind[row.kind];
      const state = document.createElement('span');
      state.className = 'conn-state';
      state.textContent = row.found ? S.netFound : S.netMissing;
      li.append(name, state);
      list.append(li);
    }
    if (t.roundTrip?.ok) {
      rtt.hidden = false;
      rtt.dataset.rtt = String(t.roundTrip.rttMs);
      rtt.textContent = S.netRtt(Math.max(1, Math.round(t.roundTrip.rttMs)), t.roundTrip.protocol);
    }
    advice.textContent = this.#netAdviceText(t);
  }

  /**
   * @param {NetTest & {state:'done'}} t
   * @returns {string}
   */
  #netAdviceText(t) {
    if (t.advice === 'access-expired') return S.errAccessExpired;
    if (t.advice === 'access-room') return S.errAccessRoom(t.room ?? '');
    if (t.advice === 'access-invalid') return S.errAccessInvalid;
    if (t.advice === 'nothing-reached') return S.netAdvice['nothing-reached'](t.ports ?? '');
    const text = /** @type {Record<string, unknown>} */ (S.netAdvice)[t.advice];
    return typeof text === 'string' ? text : S.errGeneric;
  }

  async #submitJoin() {
    if (this.#joining) return;
    this.#fieldError(this.nameInput, '');
    this.#fieldError(this.roomInput, '');
    this.#formMessage('');
    const name = checkName(this.nameInput.value);
    if (!name.ok) {
      const msg = name.error === 'empty' ? S.errNameEmpty : name.error === 'long' ? S.errNameLong : S.errNameInvalid;
      this.#fieldError(this.nameInput, msg);
      this.nameInput.focus();
      return;
    }
    if (!this.roomInput.value.trim()) this.roomInput.value = randomRoomName();
    const room = checkRoom(this.roomInput.value);
    if (!room.ok) {
      this.#fieldError(this.roomInput, room.error === 'long' ? S.errRoomLong : S.errRoomInvalid);
      this.roomInput.focus();
      return;
    }
    try {
      localStorage.setItem(NAME_KEY, name.value);
    } catch {
      /* storage may be off */
    }
    this.#fieldError(this.passwordInput, '');
    const password = !this.passwordField.hidden && this.#passwordFor === room.value ? this.passwordInput.value : '';
    if (utf8Length(password) > MAX_PASSWORD_BYTES) {
      this.#fieldError(this.passwordInput, S.errPasswordLong);
      this.passwordInput.focus();
      return;
    }
    this.#joining = true;
    this.joinButton.disabled = true;
    this.joinButton.textContent = S.joining;
    this.joinForm.setAttribute('aria-busy', 'true');
    try {
      await this.media.start();
      await this.room.join(room.value, name.value, { password, access: this.#access });
    } catch (err) {
      // A join that waited in the lobby comes back to the form.
      if (this.body.dataset.view === 'waiting') this.#showJoinView();
      this.#showJoinError(err, name.value, room.value);
    } finally {
      this.#joining = false;
      this.joinButton.disabled = false;
      this.joinButton.textContent = S.join;
      this.joinForm.removeAttribute('aria-busy');
    }
  }

  /**
   * @param {unknown} err
   * @param {string} name
   * @param {string} room
   */
  #showJoinError(err, name, room) {
    const code = codeOf(err);
    switch (code) {
      case 'password-required':
      case 'wrong-password':
        this.#askPassword(room, code === 'wrong-password' ? S.errWrongPassword : S.errPasswordRequired);
        break;
      case 'unauthorized': {
        const { why, claims } = explainUnauthorized(this.#access, name, room);
        if (why === 'name' && claims?.name) {
          this.#fieldError(this.nameInput, S.errAccessName(isolate(claims.name)));
          this.nameInput.focus();
        } else {
          this.#formMessage(this.#accessError(why, room));
          this.joinButton.focus();
        }
        break;
      }
      case 'denied':
        this.#formMessage(S.errDenied(room));
        this.joinButton.focus();
        break;
      case 'stopped':
        this.#formMessage(S.stoppedWaiting, 'info');
        this.joinButton.focus();
        break;
      case 'name-taken':
        this.#fieldError(this.nameInput, S.errNameTaken(name));
        this.nameInput.focus();
        break;
      case 'invalid-name':
        this.#fieldError(this.nameInput, S.errNameInvalid);
        this.nameInput.focus();
        break;
      case 'room-full':
        this.#fieldError(this.roomInput, S.errRoomFull(room));
        this.roomInput.focus();
        break;
      case 'invalid-room':
        this.#fieldError(this.roomInput, S.errRoomInvalid);
        this.roomInput.focus();
        break;
      case 'superseded':
        break;
      default:
        this.#formMessage(this.#generalError(code));
    }
  }

  /** @param {string} code */
  #generalError(code) {
    switch (code) {
      case 'unreachable':
        return S.errUnreachable;
      case 'timeout':
        return S.errTimeout;
      case 'protocol':
        return S.errProtocol;
      case 'replaced':
        return S.errReplaced;
      case 'rate-limited':
        return S.errRateLimited;
      case 'unavailable':
        return S.errUnavailable;
      case 'not-host':
        return S.errNotHost;
      case 'unauthorized':
        return S.errAccessInvalid;
      default:
        return S.errGeneric;
    }
  }

  /**
   * The words for an `unauthorized` join (see explainUnauthorized).
   * @param {'missing'|'name'|'expired'|'room'|'invalid'} why
   * @param {string} room
   */
  #accessError(why, room) {
    if (why === 'missing') return S.errAccessMissing;
    if (why === 'expired') return S.errAccessExpired;
    if (why === 'room') return S.errAccessRoom(room);
    return S.errAccessInvalid;
  }

  /**
   * Shows the join form's password field for ROOM with MESSAGE under it,
   * and puts the cursor there (what was typed stays, selected on a retry).
   * @param {string} room
   * @param {string} message
   */
  #askPassword(room, message) {
    this.#passwordFor = room;
    this.passwordField.hidden = false;
    this.#fieldError(this.passwordInput, message);
    this.passwordInput.focus();
    this.passwordInput.select();
  }

  /**
   * Shows (or clears, with '') the error under a field.
   * @param {HTMLInputElement} input
   * @param {string} message
   */
  #fieldError(input, message) {
    const id = (input.getAttribute('aria-describedby') || '').split(' ').find((x) => x.endsWith('-error'));
    const target = id ? document.getElementById(id) : null;
    if (target) target.textContent = message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  /**
   * A message under the join form: an error, or (kind 'info') a notice.
   * @param {string} message
   * @param {'error'|'info'} [kind]
   */
  #formMessage(message, kind = 'error') {
    const p = $('#form-error');
    p.textContent = message;
    p.dataset.kind = kind;
  }

  #showJoinView() {
    this.body.dataset.view = 'join';
    /** @type {HTMLElement} */ ($('#call-view')).hidden = true;
    /** @type {HTMLElement} */ ($('#join-view')).hidden = false;
    /** @type {HTMLElement} */ ($('.join-card')).hidden = false;
    /** @type {HTMLElement} */ ($('#waiting-card')).hidden = true;
    if (this.dialog.open) this.dialog.close();
    if (this.roomMenu.open) this.roomMenu.close();
    document.title = S.appName;
    const preview = /** @type {HTMLVideoElement} */ ($('#preview'));
    preview.play().catch(() => {});
  }

  /**
   * The lobby: the join page's card gives way to "Waiting for the host…";
   * the camera preview stays, to fix one's setup meanwhile.
   * @param {string} room
   */
  #showWaitingView(room) {
    this.#clearGrid();
    this.body.dataset.view = 'waiting';
    /** @type {HTMLElement} */ ($('#call-view')).hidden = true;
    /** @type {HTMLElement} */ ($('#join-view')).hidden = false;
    /** @type {HTMLElement} */ ($('.join-card')).hidden = true;
    /** @type {HTMLElement} */ ($('#waiting-card')).hidden = false;
    if (this.dialog.open) this.dialog.close();
    if (this.roomMenu.open) this.roomMenu.close();
    const name = this.client.waiting?.name || this.nameInput.value.trim();
    $('#waiting-room').textContent = S.waitingRoom(isolate(room), isolate(name));
    document.title = `${S.waitingDocTitle(room)} · ${S.appName}`;
    /** @type {HTMLElement} */ ($('#waiting-title')).focus();
    const preview = /** @type {HTMLVideoElement} */ ($('#preview'));
    preview.play().catch(() => {});
  }

  #showCallView() {
    this.body.dataset.view = 'call';
    /** @type {HTMLElement} */ ($('#join-view')).hidden = true;
    /** @type {HTMLElement} */ ($('#call-view')).hidden = false;
    if (innerWidth >= 1100 && this.#panel === null) this.#openPanel('chat');
    this.#layout();
  }

  // -------------------------------------------------------------- call view

  #initCall() {
    const on = (/** @type {string} */ action, /** @type {() => void} */ fn) =>
      $(`[data-action=${action}]`).addEventListener('click', fn);
    on('mute', () => this.#toggleMic());
    on('camera', () => this.#toggleCamera());
    on('leave', () => this.room.leave());
    on('copy-link', () => this.#copyLink());
    on('change-room', () => this.#openMoveDialog());
    on('chat', () => (this.#panel === 'chat' ? this.#closePanel() : this.#openPanel('chat')));
    on('people', () => (this.#panel === 'people' ? this.#closePanel() : this.#openPanel('people')));
    on('close-panel', () => this.#closePanel());
    on('cancel-move', () => this.dialog.close());
    on('raise-hand', () => this.room.raiseHand(this.room.handRaisedAt === null));
    on('share-screen', () => this.#toggleShare());
    if (!navigator.mediaDevices?.getDisplayMedia) /** @type {HTMLElement} */ ($('[data-action=share-screen]')).hidden = true;
    this.#renderShare();
    this.#initReactions();
    this.#initMore();
    this.#renderHands();
    for (const tab of document.querySelectorAll('[role=tab]')) {
      tab.addEventListener('click', () => this.#openPanel(/** @type {'chat'|'people'} */ (/** @type {HTMLElement} */ (tab).dataset.tab)));
    }
    this.chatForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (this.room.sendChat(this.chatInput.value)) this.chatInput.value = '';
      this.chatInput.focus();
    });
    this.#initFiles();
    const moveForm = /** @type {HTMLFormElement} */ ($('form#move'));
    moveForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submitMove();
    });
    $('#move-room').addEventListener('input', () => {
      const input = /** @type {HTMLInputElement} */ ($('#move-room'));
      this.#fieldError(input, '');
      const room = checkRoom(input.value);
      /** @type {HTMLElement} */ ($('#move-password-field')).hidden =
        !this.#movePasswordFor || !room.ok || room.value !== this.#movePasswordFor;
    });
    $('#move-password').addEventListener('input', () => this.#fieldError(/** @type {HTMLInputElement} */ ($('#move-password')), ''));
    this.#initAccess();
  }

  // --------------------------------------------------------------- settings

  /** The camera-and-sound dialog, from the join page and from the call. */
  #initSettings() {
    const dialog = /** @type {HTMLDialogElement} */ ($('#settings'));
    /** @type {HTMLElement | null} */
    let back = null;
    for (const b of document.querySelectorAll('[data-action=settings]')) {
      b.addEventListener('click', async () => {
        back = /** @type {HTMLElement} */ (b);
        await this.#fillDevices();
        $('#settings-note').textContent = '';
        if (!dialog.open) dialog.showModal();
        /** @type {HTMLElement} */ ($('select[name=camera]', dialog)).focus();
      });
    }
    dialog.addEventListener('close', () => back?.focus());
    for (const kind of /** @type {const} */ (['camera', 'microphone'])) {
      const select = /** @type {HTMLSelectElement} */ ($(`select[name=${kind}]`, dialog));
      select.addEventListener('change', async () => {
        const ok = await this.media.useDevice(kind, select.value);
        if (!ok) {
          $('#settings-note').textContent = S.deviceFailed;
          select.value = this.media.currentDevice(kind);
        }
      });
    }
    const speaker = /** @type {HTMLSelectElement} */ ($('select[name=speaker]', dialog));
    speaker.addEventListener('change', () => {
      this.media.setSpeaker(speaker.value);
      this.#applySpeaker();
    });
    const noise = /** @type {HTMLInputElement} */ ($('input[name=noise-suppression]', dialog));
    noise.addEventListener('change', () => this.media.setNoiseSuppression(noise.checked));
    this.media.addEventListener('devices', () => {
      if (dialog.open) this.#fillDevices();
    });
    this.media.addEventListener('fallback', (ev) => {
      const kind = /** @type {CustomEvent} */ (ev).detail.kind;
      this.#toast(kind === 'camera' ? S.cameraGone : S.microphoneGone, 6000);
      if (dialog.open) this.#fillDevices();
    });
  }

  /** The device lists, by label, with what is in use selected. */
  async #fillDevices() {
    const dialog = /** @type {HTMLElement} */ ($('#settings'));
    const list = await this.media.listDevices((kind, n) =>
      kind === 'camera' ? S.cameraN(n) : kind === 'microphone' ? S.microphoneN(n) : S.speakerN(n),
    );
    for (const kind of /** @type {const} */ (['camera', 'microphone', 'speaker'])) {
      const select = /** @type {HTMLSelectElement} */ ($(`select[name=${kind}]`, dialog));
      const options = list[kind].map((d) => new Option(d.label, d.id));
      if (kind === 'speaker') options.unshift(new Option(S.deviceDefault, ''));
      if (!options.length) options.push(new Option(S.deviceNone, ''));
      select.replaceChildren(...options);
      select.disabled = !list[kind].length;
      select.value = kind === 'speaker' ? this.media.prefs.speaker : this.media.currentDevice(kind) || this.media.prefs[kind];
      if (select.selectedIndex < 0) select.selectedIndex = 0;
    }
    /** @type {HTMLElement} */ ($('#speaker-field')).hidden = !('setSinkId' in HTMLMediaElement.prototype);
    /** @type {HTMLInputElement} */ ($('input[name=noise-suppression]', dialog)).checked = this.media.prefs.noiseSuppression;
  }

  /** Plays the others through the chosen speaker, where the browser can. */
  #applySpeaker() {
    const id = this.media.prefs.speaker;
    for (const [key, t] of this.#tiles) {
      if (key === '') continue;
      const v = /** @type {HTMLVideoElement & {setSinkId?: (id:string) => Promise<void>}} */ (t.video);
      if (typeof v.setSinkId === 'function') v.setSinkId(id).catch(() => {});
    }
  }

  // ----------------------------------------------------------- screen share

  #toggleShare() {
    if (this.room.screen) this.room.stopShare();
    else {
      this.room.startShare().then((ok) => {
        if (!ok && this.room.inRoom) this.#toast(S.shareFailed, 4000);
      });
    }
  }

  #renderShare() {
    const b = /** @type {HTMLButtonElement} */ ($('[data-action=share-screen]'));
    const on = !!this.room.screen;
    b.setAttribute('aria-pressed', String(on));
    b.setAttribute('aria-label', on ? S.stopShare : S.shareScreen);
  }

  /**
   * NAME ('' = us) started or stopped sharing.
   * @param {string} name
   * @param {boolean} on
   */
  #onScreen(name, on) {
    if (name === '') {
      this.#renderShare();
      return;
    }
    const key = name + SCREEN_KEY;
    const m = this.room.members.get(name);
    if (!on || !m) {
      this.#removeTile(key);
      return;
    }
    if (!m.link.screenStream.getVideoTracks().length) return; // the track follows (screen-track)
    if (this.#tiles.has(key)) return;
    this.#noSpotlight = false;
    const tile = el('div', 'tile screen-tile');
    tile.dataset.peer = name;
    tile.dataset.kind = 'screen';
    tile.style.setProperty('--hue', hue(name));
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = m.link.screenStream;
    const plate = el('div', 'nameplate');
    plate.append(icon('i-screen'), nameEl('span', 'name', S.screenOf(isolate(name))));
    const actions = el('div', 'tile-actions');
    actions.append(...this.#pinAndFullscreen(key, tile));
    tile.append(video, plate, actions);
    /** @type {Tile} */
    const t = { el: tile, video, state: el('div', 'tile-state') };
    this.#tiles.set(key, t);
    this.grid.append(tile);
    this.#layout();
    video.play().catch(() => {});
  }

  // ------------------------------------------------------ hands, reactions

  /** The reactions menu: a button per emoji, closed by a choice, Escape or a click elsewhere. */
  #initReactions() {
    const button = /** @type {HTMLButtonElement} */ ($('[data-action=react]'));
    const menu = /** @type {HTMLElement} */ ($('#reactions'));
    for (const emoji of REACTIONS) {
      const b = el('button', 'reaction', emoji);
      b.setAttribute('type', 'button');
      b.setAttribute('role', 'menuitem');
      b.dataset.reaction = emoji;
      b.addEventListener('click', () => {
        this.room.react(emoji);
        close(true);
      });
      menu.append(b);
    }
    const close = popupMenu(button, menu, '.react-wrap', true, () => {
      // Labels in the page's current language.
      const names = /** @type {Record<string, string>} */ (S.reactionNames);
      for (const b of menu.querySelectorAll('button')) {
        b.setAttribute('aria-label', names[/** @type {HTMLElement} */ (b).dataset.reaction || ''] || '');
      }
    });
  }

  /**
   * The "more" menu, shown on phones instead of the control bar's buttons
   * that do not fit one row. Each item presses the bar's own (hidden)
   * button, so there is one place for what an action does; it lists only
   * those the page offers now (the room menu for the host, share where the
   * browser can).
   */
  #initMore() {
    const button = /** @type {HTMLButtonElement} */ ($('[data-action=more]'));
    const menu = /** @type {HTMLElement} */ ($('#more-menu'));
    const actions = ['share-screen', 'settings', 'people', 'copy-link', 'change-room', 'room-menu'];
    const close = popupMenu(button, menu, '.more-wrap', false, () => {
      const items = [];
      for (const action of actions) {
        const real = /** @type {HTMLElement | null} */ (document.querySelector(`.controls [data-action=${action}]`));
        if (!real || real.hidden) continue;
        const item = /** @type {HTMLButtonElement} */ (el('button'));
        item.type = 'button';
        item.setAttribute('role', 'menuitem');
        item.dataset.more = action;
        const pressed = real.getAttribute('aria-pressed');
        if (pressed !== null) item.setAttribute('aria-pressed', pressed);
        const use = real.querySelector('svg use');
        item.append(icon((use?.getAttribute('href') || '').slice(1)), el('span', '', real.getAttribute('aria-label') || ''));
        item.addEventListener('click', () => {
          close(false);
          real.click();
        });
        items.push(item);
      }
      menu.replaceChildren(...items);
    });
  }

  /** Raised hands on the tiles, the people list and the button. */
  #renderHands() {
    const up = new Set(this.room.raisedHands());
    for (const [key, t] of this.#tiles) {
      if (up.has(key)) t.el.dataset.hand = 'up';
      else delete t.el.dataset.hand;
    }
    const mine = this.room.handRaisedAt !== null;
    const b = /** @type {HTMLButtonElement} */ ($('[data-action=raise-hand]'));
    b.setAttribute('aria-pressed', String(mine));
    b.setAttribute('aria-label', mine ? S.lowerHand : S.raiseHand);
    this.#renderPeople();
  }

  /**
   * Floats EMOJI over NAME's tile ('' = ours) for a few seconds.
   * @param {string} name
   * @param {string} emoji
   */
  #floatReaction(name, emoji) {
    const t = this.#tiles.get(name);
    if (!t || t.el.querySelectorAll('[data-reaction-float]').length >= MAX_FLOATING_REACTIONS) return;
    const f = el('span', 'reaction-float', emoji);
    f.dataset.reactionFloat = emoji;
    f.setAttribute('aria-hidden', 'true');
    f.style.setProperty('--x', `${12 + Math.random() * 64}%`);
    t.el.append(f);
    setTimeout(() => f.remove(), REACTION_MS);
    if (name) {
      const label = /** @type {Record<string, string>} */ (S.reactionNames)[emoji] || emoji;
      $('#announce').textContent = S.reactedBy(isolate(name), label);
    }
  }

  // ------------------------------------------------------------ room access

  /** The host's room menu, the knocks, and the per-member host actions. */
  #initAccess() {
    const menuButton = /** @type {HTMLButtonElement} */ ($('[data-action=room-menu]'));
    menuButton.setAttribute('aria-expanded', 'false');
    menuButton.addEventListener('click', () => this.#openRoomMenu());
    $('[data-action=close-room-menu]', this.roomMenu).addEventListener('click', () => this.roomMenu.close());
    this.roomMenu.addEventListener('close', () => {
      menuButton.setAttribute('aria-expanded', 'false');
      const back = this.#menuReturn;
      this.#menuReturn = null;
      if (back && back.isConnected && !back.hidden) back.focus();
    });
    // A click on the backdrop (outside the dialog's box) closes it too.
    this.roomMenu.addEventListener('click', (e) => {
      if (e.target !== this.roomMenu) return;
      const r = this.roomMenu.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) this.roomMenu.close();
    });
    $('[data-action=lock-room]', this.roomMenu).addEventListener('click', () => {
      if (!this.room.setLocked(!this.room.access.locked)) this.#toast(S.notConnected, 4000);
    });
    const pwInput = /** @type {HTMLInputElement} */ ($('input[name=room-password]', this.roomMenu));
    pwInput.addEventListener('input', () => this.#fieldError(pwInput, ''));
    $('form#room-password-form').addEventListener('submit', (e) => {
      e.preventDefault();
      if (!pwInput.value) {
        this.#fieldError(pwInput, S.errRoomPasswordEmpty);
        pwInput.focus();
        return;
      }
      if (utf8Length(pwInput.value) > MAX_PASSWORD_BYTES) {
        this.#fieldError(pwInput, S.errPasswordLong);
        pwInput.focus();
        return;
      }
      if (!this.room.setPassword(pwInput.value)) {
        this.#fieldError(pwInput, S.notConnected);
        return;
      }
      pwInput.value = '';
    });
    $('[data-action=clear-password]', this.roomMenu).addEventListener('click', () => {
      if (!this.room.clearPassword()) this.#fieldError(pwInput, S.notConnected);
    });

    // Host actions in the people list; the list is redrawn often, so one
    // listener on the list.
    $('#people').addEventListener('click', (e) => {
      const b = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('button[data-action]'));
      const li = /** @type {HTMLElement | null} */ (b?.closest('li[data-peer]') || null);
      if (!b || !li) return;
      const name = li.dataset.peer || '';
      let sent = true;
      if (b.dataset.action === 'remove') sent = this.room.remove(name);
      else if (b.dataset.action === 'ask-mute') {
        sent = this.room.askMute(name);
        if (sent) this.#toast(S.askedMuteSent(isolate(name)), 3000);
      }
      if (!sent) this.#toast(S.notConnected, 4000);
    });
    const knocks = $('#knocks');
    knocks.setAttribute('aria-label', S.knocksLabel);
    knocks.addEventListener('click', (e) => {
      const b = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('button[data-action]'));
      const card = /** @type {HTMLElement | null} */ (b?.closest('[data-knock]') || null);
      if (!b || !card) return;
      const name = card.dataset.knock || '';
      const sent = b.dataset.action === 'admit' ? this.room.admit(name) : b.dataset.action === 'deny' ? this.room.deny(name) : true;
      if (!sent) this.#toast(S.notConnected, 4000);
    });
  }

  #openRoomMenu() {
    if (!this.room.isHost || this.roomMenu.open) return;
    const active = document.activeElement;
    this.#menuReturn = active instanceof HTMLElement ? active : null;
    const pwInput = /** @type {HTMLInputElement} */ ($('input[name=room-password]', this.roomMenu));
    pwInput.value = '';
    this.#fieldError(pwInput, '');
    this.#renderAccess();
    this.roomMenu.showModal();
    $('[data-action=room-menu]').setAttribute('aria-expanded', 'true');
    /** @type {HTMLElement} */ ($('[data-action=lock-room]', this.roomMenu)).focus();
  }

  /**
   * Draws who is host, the password and lobby flags, and the room menu's
   * state; the menu button is the host's alone.
   * @param {string | null} [previousHost] the host before this change, to
   *   say when the role came to us or went to someone else
   */
  #renderAccess(previousHost) {
    const { host, locked } = this.room.access;
    const isProtected = this.room.access.protected;
    const isHost = this.room.isHost;
    this.callView.toggleAttribute('data-protected', isProtected);
    this.callView.toggleAttribute('data-locked', locked);
    /** @type {HTMLElement} */ ($('#flag-protected')).hidden = !isProtected;
    /** @type {HTMLElement} */ ($('#flag-locked')).hidden = !locked;
    const menuButton = /** @type {HTMLElement} */ ($('[data-action=room-menu]'));
    menuButton.hidden = !isHost;
    if (!isHost && this.roomMenu.open) this.roomMenu.close();
    const lock = /** @type {HTMLElement} */ ($('[data-action=lock-room]', this.roomMenu));
    lock.setAttribute('aria-checked', String(locked));
    lock.dataset.on = String(locked);
    $('#room-password-status').textContent = isProtected ? S.roomPasswordSet : S.roomPasswordNone;
    /** @type {HTMLButtonElement} */ ($('[data-action=clear-password]', this.roomMenu)).disabled = !isProtected;
    for (const [key, t] of this.#tiles) {
      const name = key === '' ? this.room.self : key;
      t.el.toggleAttribute('data-host', !!host && name === host);
    }
    this.#renderPeople();
    if (previousHost !== undefined && host && previousHost && host !== previousHost && this.body.dataset.view === 'call') {
      this.#toast(isHost ? S.youAreHost : S.nowHost(isolate(host)), 4000);
    }
  }

  /**
   * The knock cards (host only): one per waiting person, in knocking order,
   * with Admit and Deny. Cards are kept across redraws so focus stays; when
   * the focused card goes, focus moves to the next one (or the room menu).
   * @param {string[]} names
   */
  #renderKnocks(names) {
    const box = $('#knocks');
    const active = document.activeElement;
    const focusedName = active instanceof HTMLElement && box.contains(active)
      ? /** @type {HTMLElement} */ (active.closest('[data-knock]'))?.dataset.knock
      : undefined;
    const focusedAction = active instanceof HTMLElement ? active.dataset.action : undefined;
    const keep = new Set(names);
    const order = [...this.#knockEls.keys()];
    for (const [name, card] of this.#knockEls) {
      if (!keep.has(name)) {
        card.remove();
        this.#knockEls.delete(name);
      }
    }
    for (const name of names) {
      let card = this.#knockEls.get(name);
      if (!card) {
        card = this.#knockCard(name);
        this.#knockEls.set(name, card);
      }
      box.append(card); // moves it into order
    }
    if (focusedName !== undefined && !keep.has(focusedName)) {
      const i = order.indexOf(focusedName);
      const next = names.find((n) => order.indexOf(n) > i) || names[names.length - 1];
      const target = next ? $(`[data-action=${focusedAction === 'deny' ? 'deny' : 'admit'}]`, /** @type {HTMLElement} */ (this.#knockEls.get(next))) : null;
      if (target) /** @type {HTMLElement} */ (target).focus();
      else /** @type {HTMLElement} */ ($('[data-action=room-menu]')).focus();
    }
    const n = names.length;
    const count = /** @type {HTMLElement} */ ($('#lobby-count'));
    count.hidden = n === 0;
    count.textContent = n ? S.waitingCount(n) : '';
    const badge = /** @type {HTMLElement} */ ($('#knock-badge'));
    badge.hidden = n === 0;
    badge.textContent = String(n);
    $('[data-action=people]').setAttribute('aria-label', n ? `${S.people} · ${S.waitingCount(n)}` : S.people);
  }

  /**
   * @param {string} name
   * @returns {HTMLElement}
   */
  #knockCard(name) {
    const card = el('div', 'knock');
    card.dataset.knock = name;
    card.setAttribute('role', 'group');
    card.setAttribute('aria-label', S.knockText(isolate(name)));
    const av = el('span', 'avatar small', initial(name));
    av.style.setProperty('--hue', hue(name));
    av.setAttribute('aria-hidden', 'true');
    const text = el('div', 'knock-text');
    const who = nameEl('span', 'name', name);
    text.append(who, el('span', 'knock-what', S.knockWhat));
    const deny = el('button', 'secondary compact', S.deny);
    deny.setAttribute('type', 'button');
    deny.dataset.action = 'deny';
    deny.setAttribute('aria-label', S.denyLabel(isolate(name)));
    const admit = el('button', 'primary compact', S.admit);
    admit.setAttribute('type', 'button');
    admit.dataset.action = 'admit';
    admit.setAttribute('aria-label', S.admitLabel(isolate(name)));
    const actions = el('div', 'knock-actions');
    actions.append(deny, admit);
    card.append(av, text, actions);
    return card;
  }

  #wireRoom() {
    const room = this.room;
    const on = (/** @type {string} */ type, /** @type {(d:any)=>void} */ fn) =>
      room.addEventListener(type, (ev) => fn(/** @type {CustomEvent} */ (ev).detail));
    on('joined', (d) => this.#onJoined(d));
    on('resumed', () => this.#renderPeople());
    on('member-added', (d) => this.#addTile(d.name));
    on('member-removed', (d) => {
      this.#removeTile(d.name);
      this.#removeTile(d.name + SCREEN_KEY);
    });
    on('screen', (d) => this.#onScreen(d.name, d.on));
    on('member-updated', (d) => this.#updateTile(d.name));
    on('member-track', (d) => this.#onTrack(d.name));
    on('signaling', (d) => this.#onSignaling(d.state));
    on('speaking', (d) => {
      const t = this.#tiles.get(d.name);
      if (!t) return;
      if (d.on) t.el.dataset.speaking = '';
      else delete t.el.dataset.speaking;
    });
    on('left', () => {
      this.#clearGrid();
      this.#showJoinView();
      this.#formMessage(S.leftCall, 'info');
      this.joinButton.focus();
    });
    on('ended', (d) => {
      this.#clearGrid();
      this.#showJoinView();
      const reason = String(d.reason);
      const msg =
        reason === 'removed'
          ? d.by ? S.removedBy(isolate(d.by)) : S.removedNoName
          : reason === 'replaced' || reason === 'protocol'
            ? this.#generalError(reason)
            : reason === 'unauthorized'
              ? S.errRejoinUnauthorized
              : reason === 'denied'
                ? S.errDenied(d.room || '')
                : S.errRejoinFailed(d.room || '');
      this.#formMessage(msg);
      this.joinButton.focus();
    });
    on('waiting', (d) => this.#showWaitingView(String(d.room)));
    /** @type {string | null} */
    let lastHost = null;
    on('access', (d) => {
      this.#renderAccess(d.joined ? undefined : lastHost);
      lastHost = d.host;
    });
    on('knocks', (d) => this.#renderKnocks(d.names));
    on('hand', (d) => {
      this.#renderHands();
      if (d.name && d.up) $('#announce').textContent = S.handRaisedBy(isolate(d.name));
    });
    on('reaction', (d) => this.#floatReaction(d.name, d.emoji));
    on('asked-mute', (d) => this.#toast(d.by ? S.askedMute(isolate(d.by)) : S.askedMute(S.host), 8000));
    on('error', (d) => {
      // Errors not tied to a join: refusals of the host's commands and the like.
      const code = String(d.code);
      if (code === 'not-host') this.#toast(S.errNotHost, 4000);
      else if (code === 'room-full') this.#toast(S.errAdmitFull, 5000);
      else if (code === 'unavailable' || code === 'rate-limited') this.#toast(this.#generalError(code), 4000);
    });
    room.chat.addEventListener('entry', (ev) => this.#appendChat(/** @type {CustomEvent} */ (ev).detail));
    room.files.addEventListener('update', (ev) => {
      const t = /** @type {CustomEvent} */ (ev).detail.transfer;
      const li = this.#fileEls.get(t.key);
      if (li) this.#fillFile(li, t);
    });
    room.files.addEventListener('added', (ev) => {
      const t = /** @type {CustomEvent} */ (ev).detail.transfer;
      if (t.direction === 'in') $('#announce').textContent = S.fileOfferedBy(isolate(t.from), t.name);
    });
    room.chat.addEventListener('clear', () => {
      this.#pendingChat = [];
      this.#fileEls.clear();
      this.messages.replaceChildren();
      this.#setUnread(0);
      this.#renderChatEmpty();
    });
  }

  /** @param {{room:string, name:string, peers:string[], rejoined:boolean}} d */
  #onJoined(d) {
    this.#clearGrid();
    this.#addTile(d.name, true);
    this.roomInput.value = d.room;
    this.nameInput.value = d.name;
    $('#join-title').textContent = S.joinRoomTitle(d.room);
    $('#room-name').textContent = d.room;
    document.title = `${d.room} · ${S.appName}`;
    // Keep the query (e.g. ?relay=1) so a reload behaves the same, less the
    // invitation token: it should not stay on screen, in the history or in
    // a copied address (this tab keeps it for its own rejoins).
    const url = addressWithoutAccess(`/r/${encodeURIComponent(d.room)}`);
    if (location.pathname + location.search + location.hash !== url) history.replaceState(null, '', url);
    this.#formMessage('');
    this.#showCallView();
    this.#renderAccess();
    this.#renderHands();
    const r = this.media.result;
    if (r && !d.rejoined) {
      if (r.audio && !r.video) this.#toast(S.inCallMediaNote.audioOnly, 6000);
      else if (!r.audio && r.video) this.#toast(S.inCallMediaNote.videoOnly, 6000);
      else if (!r.audio && !r.video) this.#toast(S.inCallMediaNote.none, 6000);
    }
  }

  /** @param {string} state */
  #onSignaling(state) {
    this.body.dataset.signaling = state;
    const banner = /** @type {HTMLElement} */ ($('#banner'));
    if (state === 'reconnecting' && this.room.inRoom) {
      $('#banner-text').textContent = S.signalingReconnecting;
      banner.hidden = false;
    } else if (!banner.hidden && state === 'open') {
      banner.hidden = true;
      this.#toast(S.signalingBack, 2000);
    } else if (state !== 'reconnecting') {
      banner.hidden = true;
    }
  }

  // ------------------------------------------------------------------ tiles

  /**
   * @param {string} name
   * @param {boolean} [self]
   */
  #addTile(name, self = false) {
    const key = self ? '' : name;
    this.#removeTile(key);
    const tile = el('div', 'tile');
    tile.dataset.peer = name;
    if (self) tile.dataset.self = '';
    if (this.room.access.host !== null && this.room.access.host === name) tile.dataset.host = '';
    tile.style.setProperty('--hue', hue(name));

    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    if (self) {
      video.muted = true;
      video.classList.add('mirror');
      if (this.media.videoTrack) video.srcObject = this.media.stream;
    } else {
      const member = this.room.members.get(name);
      if (member) video.srcObject = member.link.remoteStream;
    }
    video.addEventListener('resize', () => this.#updateTile(key));
    video.addEventListener('playing', () => this.#updateTile(key));
    const sink = /** @type {HTMLVideoElement & {setSinkId?: (id:string) => Promise<void>}} */ (video);
    if (!self && this.media.prefs.speaker && typeof sink.setSinkId === 'function') {
      sink.setSinkId(this.media.prefs.speaker).catch(() => {});
    }

    const avatar = el('div', 'avatar');
    avatar.setAttribute('aria-hidden', 'true');
    avatar.append(el('span', '', initial(name)));

    const state = el('div', 'tile-state');
    const plate = el('div', 'nameplate');
    const muted = icon('i-mic-off', 'muted-icon');
    muted.setAttribute('aria-hidden', 'false');
    muted.setAttribute('role', 'img');
    muted.setAttribute('aria-label', S.mutedLabel);
    const crown = icon('i-host', 'host-icon');
    crown.setAttribute('aria-hidden', 'false');
    crown.setAttribute('role', 'img');
    crown.setAttribute('aria-label', S.host);
    const hand = el('span', 'hand-icon', '✋');
    hand.setAttribute('role', 'img');
    hand.setAttribute('aria-label', S.handRaised);
    plate.append(crown, hand, muted, nameEl('span', 'name', self ? S.youSuffix(isolate(name)) : name));
    if (this.room.raisedHands().includes(key)) tile.dataset.hand = 'up';

    const actions = el('div', 'tile-actions');
    const [pin, full] = this.#pinAndFullscreen(key, tile);
    if (!self) {
      const q = tileButton('connection-info', 'i-signal', S.qualityGood);
      q.classList.add('quality-button');
      q.setAttribute('aria-expanded', 'false');
      const info = el('dl', 'conn-info');
      info.hidden = true;
      q.addEventListener('click', () => {
        info.hidden = !info.hidden;
        q.setAttribute('aria-expanded', String(!info.hidden));
        if (!info.hidden) this.#renderConnInfo(name);
      });
      tile.append(info);
      actions.append(pin, full, q);
    } else {
      actions.append(pin, full);
    }
    tile.append(video, avatar, state, plate, actions);
    this.#tiles.set(key, { el: tile, video, state });
    this.grid.append(tile);
    this.#updateTile(key);
    this.#layout();
    this.#renderPeople();
    video.play().catch(() => {});
  }

  /** @param {string} key member name, or '' for the own tile */
  #removeTile(key) {
    const t = this.#tiles.get(key);
    if (!t) return;
    clearTimeout(t.stateTimer);
    t.video.srcObject = null;
    t.el.remove();
    this.#tiles.delete(key);
    if (this.#pinned === key) this.#pinned = null;
    this.#probes.delete(key);
    this.#quality.delete(key);
    this.#layout();
    this.#renderPeople();
  }

  #clearGrid() {
    for (const key of [...this.#tiles.keys()]) this.#removeTile(key);
  }

  /** @param {string} name */
  #onTrack(name) {
    const t = this.#tiles.get(name);
    const m = this.room.members.get(name);
    if (!t || !m) return;
    if (t.video.srcObject !== m.link.remoteStream) t.video.srcObject = m.link.remoteStream;
    t.video.play().catch(() => {});
    this.#updateTile(name);
  }

  /** @param {string} key */
  #updateTile(key) {
    const t = this.#tiles.get(key);
    if (!t) return;
    let audioOn;
    let videoOn;
    if (key === '') {
      audioOn = !!this.media.activeTrack('audio');
      videoOn = !!this.media.activeTrack('video');
      t.el.dataset.state = 'connected';
    } else {
      const m = this.room.members.get(key);
      if (!m) return;
      audioOn = m.audio !== false;
      videoOn = m.video !== false && t.video.videoWidth > 0;
      const state = m.link.state;
      if (t.el.dataset.state !== state) {
        t.el.dataset.state = state;
        clearTimeout(t.stateTimer);
        const label =
          state === 'connected'
            ? S.stateConnected
            : state === 'reconnecting'
              ? S.stateReconnecting
              : state === 'failed'
                ? S.stateFailed
                : S.stateConnecting;
        t.state.textContent = label;
        t.state.hidden = false;
        t.state.classList.remove('fade');
        // The label goes away once media flows.
        if (state === 'connected') {
          t.stateTimer = setTimeout(() => t.state.classList.add('fade'), 1500);
        }
      }
    }
    t.el.dataset.audio = audioOn ? 'on' : 'off';
    t.el.dataset.video = videoOn ? 'on' : 'off';
    if (key !== '') this.#renderPeople();
  }

  /** Sizes the tiles to the grid (see gridLayout). */
  #layoutNow() {
    const n = this.#tiles.size;
    const W = this.grid.clientWidth;
    const H = this.grid.clientHeight;
    this.grid.dataset.count = String(n);
    if (!n || !W || !H) return;
    const marked = this.#markPinned();
    const pinned = n > 1 ? marked : null;
    if (pinned !== null) {
      // The pinned tile large on a row of its own, the rest in a strip below.
      const pin = pinLayout(n, W, H);
      delete this.grid.dataset.cols;
      this.grid.dataset.pinned = '';
      this.grid.classList.remove('narrow');
      this.grid.style.setProperty('--tile-w', `${pin.strip}px`);
      this.grid.style.setProperty('--pin-w', `${pin.pinned}px`);
      return;
    }
    delete this.grid.dataset.pinned;
    const { narrow, cols, width } = gridLayout(n, W, H);
    this.grid.dataset.cols = String(cols);
    this.grid.classList.toggle('narrow', narrow);
    this.grid.style.setProperty('--tile-w', `${width}px`);
  }

  /** Samples every member's connection and updates the tiles' indicators. */
  async #sampleQuality() {
    if (this.#sampling || document.hidden) return;
    this.#sampling = true;
    try {
      for (const [name, m] of [...this.room.members]) {
        let probe = this.#probes.get(name);
        if (!probe || probe.pc !== m.link.pc) {
          probe = new QualityProbe(m.link.pc);
          this.#probes.set(name, probe);
        }
        const q = await probe.sample(m.video !== false);
        if (this.room.members.get(name) !== m) continue;
        this.#quality.set(name, q);
        const t = this.#tiles.get(name);
        if (!t) continue;
        t.el.dataset.quality = q.grade;
        const b = t.el.querySelector('[data-action=connection-info]');
        if (b) {
          const label = q.grade === 'bad' ? S.qualityBad : q.grade === 'weak' ? S.qualityWeak : S.qualityGood;
          b.setAttribute('aria-label', label);
          b.setAttribute('title', label);
        }
        if (!(/** @type {HTMLElement} */ (t.el.querySelector('.conn-info'))).hidden) this.#renderConnInfo(name);
      }
    } catch {
      /* a connection closed while it was sampled: the next round skips it */
    } finally {
      this.#sampling = false;
    }
  }

  /**
   * The details of NAME's connection, in its tile.
   * @param {string} name
   */
  #renderConnInfo(name) {
    const t = this.#tiles.get(name);
    const info = t?.el.querySelector('.conn-info');
    if (!t || !info) return;
    const q = this.#quality.get(name);
    const none = S.connNone;
    const pct = new Intl.NumberFormat(language(), { style: 'percent', maximumFractionDigits: 1 });
    /** @type {[string, string, string][]} key, label, value */
    const rows = [
      ['path', S.connPath, !q?.path ? S.pathUnknown : `${q.path === 'relay' ? S.pathRelay : q.path === 'nat' ? S.pathNat : S.pathDirect}${q.protocol ? ` (${q.protocol.toUpperCase()})` : ''}`],
      ['rtt', S.connRtt, q?.rttMs == null ? none : S.connMs(q.rttMs)],
      ['in', S.connIn, q ? S.connKbps(q.inKbps) : none],
      ['out', S.connOut, q ? S.connKbps(q.outKbps) : none],
      ['loss', S.connLoss, q?.loss == null ? none : pct.format(q.loss)],
      ['video', S.connVideo, q?.videoCodec && q.width ? S.connVideoValue(q.videoCodec, q.width, q.height, q.fps) : none],
      ['audio', S.connAudio, q?.audioCodec || none],
    ];
    info.replaceChildren(
      ...rows.flatMap(([key, label, value]) => {
        const dt = el('dt', '', label);
        const dd = el('dd', '', value);
        dd.dataset.stat = key;
        return [dt, dd];
      }),
    );
  }

  /**
   * The pin and full-screen buttons of tile KEY; a double-click on the tile
   * (not on a button) toggles the pin too.
   * @param {string} key
   * @param {HTMLElement} tile
   * @returns {[HTMLButtonElement, HTMLButtonElement]}
   */
  #pinAndFullscreen(key, tile) {
    const pin = tileButton('pin', 'i-pin', S.pin);
    pin.setAttribute('aria-pressed', 'false');
    pin.addEventListener('click', () => this.#togglePin(key));
    const full = tileButton('fullscreen', 'i-expand', S.fullscreen);
    full.addEventListener('click', () => this.#toggleFullscreen(tile));
    tile.addEventListener('dblclick', (e) => {
      if (!(/** @type {Element} */ (e.target)).closest('button')) this.#togglePin(key);
    });
    return [pin, full];
  }

  /**
   * Pins the tile KEY ('' = ours), or unpins it if it is the pinned one.
   * @param {string} key
   */
  #togglePin(key) {
    if (this.#effectivePin() === key) {
      this.#pinned = null;
      this.#noSpotlight = true;
    } else {
      this.#pinned = key;
    }
    this.#layout();
  }

  /**
   * The tile shown large: the one the person pinned, else the first screen
   * share (spotlighted), else none.
   * @returns {string | null}
   */
  #effectivePin() {
    if (this.#pinned !== null && this.#tiles.has(this.#pinned)) return this.#pinned;
    if (this.#noSpotlight) return null;
    for (const key of this.#tiles.keys()) if (key.endsWith(SCREEN_KEY)) return key;
    return null;
  }

  /** Marks the tile shown large, and the pin buttons. */
  #markPinned() {
    const pinned = this.#effectivePin();
    for (const [k, t] of this.#tiles) {
      const on = k === pinned;
      if (on) t.el.dataset.pinned = '';
      else delete t.el.dataset.pinned;
      const b = t.el.querySelector('[data-action=pin]');
      if (b) {
        b.setAttribute('aria-pressed', String(on));
        b.setAttribute('aria-label', on ? S.unpin : S.pin);
        b.setAttribute('title', on ? S.unpin : S.pin);
      }
    }
    return pinned;
  }

  /**
   * Shows TILE on the whole screen, or leaves full screen.
   * @param {HTMLElement} tile
   */
  #toggleFullscreen(tile) {
    if (document.fullscreenElement === tile) {
      document.exitFullscreen().catch(() => {});
      return;
    }
    tile.requestFullscreen?.().catch(() => this.#toast(S.fullscreenFailed, 3000));
  }

  // ----------------------------------------------------------- media toggles

  #toggleMic() {
    if (!this.media.audioTrack) return;
    this.media.setAudioEnabled(!this.media.audioEnabled);
  }

  #toggleCamera() {
    if (!this.media.videoTrack) return;
    this.media.setVideoEnabled(!this.media.videoEnabled);
  }

  #renderMediaControls() {
    const hasA = !!this.media.audioTrack;
    const hasV = !!this.media.videoTrack;
    const started = !!this.media.result;
    const aOn = hasA && this.media.audioEnabled;
    const vOn = hasV && this.media.videoEnabled;
    for (const b of document.querySelectorAll('[data-action=mute], [data-action=preview-mute]')) {
      const label = !started ? S.micOn : !hasA ? S.micMissing : aOn ? S.micOn : S.micOff;
      this.#setToggle(/** @type {HTMLButtonElement} */ (b), started ? aOn : true, label, started && !hasA);
    }
    for (const b of document.querySelectorAll('[data-action=camera], [data-action=preview-camera]')) {
      const label = !started ? S.camOn : !hasV ? S.camMissing : vOn ? S.camOn : S.camOff;
      this.#setToggle(/** @type {HTMLButtonElement} */ (b), started ? vOn : true, label, started && !hasV);
    }
    const frame = $('#preview-frame');
    frame.dataset.video = vOn ? 'on' : 'off';
    $('#preview-off-text').textContent = !started ? S.previewStarting : S.previewCameraOff;
    this.#updateTile('');
    this.#renderPeople();
  }

  /**
   * @param {HTMLButtonElement} b
   * @param {boolean} on
   * @param {string} label
   * @param {boolean} missing
   */
  #setToggle(b, on, label, missing) {
    b.dataset.on = String(on);
    b.setAttribute('aria-pressed', String(!on));
    b.setAttribute('aria-label', label);
    b.disabled = missing;
  }

  // --------------------------------------------------------- panel and chat

  /** @param {'chat'|'people'} which */
  #openPanel(which) {
    this.#panel = which;
    /** @type {HTMLElement} */ ($('#side')).hidden = false;
    for (const tab of document.querySelectorAll('[role=tab]')) {
      tab.setAttribute('aria-selected', String(/** @type {HTMLElement} */ (tab).dataset.tab === which));
    }
    /** @type {HTMLElement} */ ($('#panel-chat')).hidden = which !== 'chat';
    /** @type {HTMLElement} */ ($('#panel-people')).hidden = which !== 'people';
    $('[data-action=chat]').setAttribute('aria-pressed', String(which === 'chat'));
    $('[data-action=people]').setAttribute('aria-pressed', String(which === 'people'));
    if (which === 'chat') {
      this.#setUnread(0);
      // On the next frame: scrolling and focusing now would lay the page
      // out at once (about 40 ms when the call view has just appeared, in
      // the task that is about to send the offers).
      requestAnimationFrame(() => {
        if (this.#panel !== 'chat') return;
        this.messages.scrollTop = this.messages.scrollHeight;
        if (this.body.dataset.view === 'call' && innerWidth >= NARROW_PX) this.chatInput.focus({ preventScroll: true });
      });
    }
    this.#renderChatEmpty();
    this.#layout();
  }

  #closePanel() {
    this.#panel = null;
    /** @type {HTMLElement} */ ($('#side')).hidden = true;
    $('[data-action=chat]').setAttribute('aria-pressed', 'false');
    $('[data-action=people]').setAttribute('aria-pressed', 'false');
    this.#layout();
  }

  /** @param {number} n */
  #setUnread(n) {
    this.#unread = n;
    const badge = /** @type {HTMLElement} */ ($('#unread'));
    badge.hidden = n === 0;
    badge.textContent = n > 99 ? '99+' : String(n);
    const button = $('[data-action=chat]');
    const label = n ? `${S.chat} · ${S.unread(n)}` : S.chat;
    button.setAttribute('aria-label', label);
  }

  #renderChatEmpty() {
    /** @type {HTMLElement} */ ($('#chat-empty')).hidden = this.messages.childElementCount > 0;
  }

  /**
   * Queues a chat entry for the next frame: a burst of entries costs one
   * layout, however many arrive.
   * @param {import('./chat.js').ChatEntry} entry
   */
  #appendChat(entry) {
    this.#pendingChat.push(entry);
    if (this.#pendingChat.length > MAX_CHAT_ENTRIES) this.#pendingChat.shift();
    this.#flushChat();
  }

  #flushChatNow() {
    const entries = this.#pendingChat;
    this.#pendingChat = [];
    if (!entries.length) return;
    const list = this.messages;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    let prev = /** @type {HTMLElement | null} */ (list.lastElementChild);
    const batch = document.createDocumentFragment();
    let unread = 0;
    let ownSent = false;
    /** @type {HTMLElement | null} */
    let li = null;
    for (const entry of entries) {
      li = this.#chatItem(entry, prev);
      batch.append(li);
      prev = li;
      if (entry.kind !== 'system' && entry.self) ownSent = true;
      if (entry.kind !== 'system' && !entry.self) unread += 1;
    }
    list.append(batch);
    const excess = list.childElementCount - MAX_CHAT_ENTRIES;
    for (let i = 0; i < excess; i++) {
      const first = /** @type {HTMLElement | null} */ (list.firstElementChild);
      if (first?.dataset.file) this.#fileEls.delete(first.dataset.file);
      first?.remove();
    }
    this.#renderChatEmpty();
    if (li && (nearBottom || ownSent)) li.scrollIntoView({ block: 'end' });
    if (unread && this.#panel !== 'chat') this.#setUnread(this.#unread + unread);
  }

  /**
   * One chat line. Names sit in their own `dir="auto"` element (or between
   * Unicode isolates inside a sentence) so that a right-to-left name cannot
   * reorder the text around it.
   * @param {import('./chat.js').ChatEntry} entry
   * @param {HTMLElement | null} prev the line before it
   * @returns {HTMLElement}
   */
  #chatItem(entry, prev) {
    const time = el('time', 'time', clock(entry.sent));
    time.setAttribute('datetime', new Date(entry.sent).toISOString());
    if (entry.kind === 'chat') {
      const li = el('li', entry.self ? 'msg self' : 'msg');
      li.dataset.from = entry.from;
      const sameAsPrev = prev && prev.dataset.from === entry.from && entry.sent - Number(prev.dataset.sent || 0) < 120_000;
      if (sameAsPrev) li.classList.add('cont');
      const meta = el('div', 'meta');
      meta.append(nameEl('span', 'from', entry.self ? S.you : entry.from), time);
      const text = el('div', 'text', entry.text);
      text.dir = 'auto';
      li.append(meta, text);
      li.dataset.sent = String(entry.sent);
      return li;
    }
    if (entry.kind === 'file') return this.#fileItem(entry, time);
    const li = el('li', 'system');
    li.dataset.event = entry.event;
    li.dataset.name = entry.name;
    const name = isolate(entry.name);
    const text = entry.event === 'joined' ? S.joinedLine(name) : entry.event === 'left' ? S.leftLine(name) : S.youJoinedLine(name);
    li.append(el('span', '', text), time);
    return li;
  }

  // ------------------------------------------------------------------ files

  #initFiles() {
    $('[data-action=send-file]').addEventListener('click', () => this.fileInput.click());
    this.fileInput.addEventListener('change', () => {
      const files = [...(this.fileInput.files || [])];
      this.fileInput.value = '';
      this.#sendFiles(files);
    });
    // Files dropped on the chat go to everyone too.
    const panel = $('#panel-chat');
    const hasFiles = (/** @type {DragEvent} */ e) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    panel.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      panel.classList.add('drop-target');
    });
    panel.addEventListener('dragleave', () => panel.classList.remove('drop-target'));
    panel.addEventListener('drop', (e) => {
      panel.classList.remove('drop-target');
      if (!hasFiles(e)) return;
      e.preventDefault();
      this.#sendFiles([...(e.dataTransfer?.files || [])]);
    });
    this.messages.addEventListener('click', (e) => {
      const target = /** @type {HTMLElement} */ (e.target);
      const button = /** @type {HTMLElement | null} */ (target.closest('button[data-action]'));
      const key = /** @type {HTMLElement | null} */ (target.closest('[data-file]'))?.dataset.file;
      if (!button || !key) return;
      const action = button.dataset.action;
      if (action === 'accept-file') this.room.files.accept(key);
      else if (action === 'decline-file') this.room.files.decline(key);
      else if (action === 'cancel-file') this.room.files.cancel(key);
    });
  }

  /** @param {File[]} files */
  #sendFiles(files) {
    for (const file of files) {
      const r = this.room.sendFile(file);
      if ('error' in r) {
        this.#toast(r.error === 'too-large' ? S.fileTooLarge(file.name, formatBytes(this.room.files.maxFileSize)) : S.fileNoOne, 5000);
        if (r.error === 'empty-call') return;
      }
    }
  }

  /**
   * The chat line of a file transfer (see #fillFile).
   * @param {{kind:'file', key:string, from:string, self:boolean, sent:number}} entry
   * @param {HTMLElement} time
   */
  #fileItem(entry, time) {
    const li = el('li', entry.self ? 'msg file self' : 'msg file');
    li.dataset.from = entry.from;
    li.dataset.file = entry.key;
    li.dataset.sent = String(entry.sent);
    const meta = el('div', 'meta');
    meta.append(nameEl('span', 'from', entry.self ? S.you : entry.from), time);
    li.append(meta);
    const t = this.room.files.transfers.get(entry.key);
    if (!t) return li;
    const card = el('div', 'file-card');
    const info = el('div', 'file-info');
    const name = el('span', 'file-name', t.name);
    name.dir = 'auto';
    name.title = t.name;
    info.append(name, el('span', 'file-size', formatBytes(t.size)));
    const progress = /** @type {HTMLProgressElement} */ (el('progress'));
    progress.max = Math.max(1, t.size);
    const status = el('p', 'file-status');
    card.append(icon('i-file'), info, progress, status);
    if (t.direction === 'out') card.append(el('ul', 'file-legs'));
    card.append(el('div', 'file-actions'));
    li.append(card);
    this.#fileEls.set(entry.key, li);
    this.#fillFile(li, t);
    return li;
  }

  /**
   * Shows a transfer's state: progress, what happened, and what can be done.
   * The buttons are made anew only when the state changes, so focus stays.
   * @param {HTMLElement} li
   * @param {import('./files.js').Transfer} t
   */
  #fillFile(li, t) {
    const state = t.direction === 'out' ? overallState(t) : t.state;
    const changed = li.dataset.state !== state;
    li.dataset.direction = t.direction;
    li.dataset.state = state;
    const progress = /** @type {HTMLProgressElement | null} */ (li.querySelector('progress'));
    const status = li.querySelector('.file-status');
    const actions = li.querySelector('.file-actions');
    if (!progress || !status || !actions) return;
    /** @type {HTMLElement[]} */
    const buttons = [];
    const button = (/** @type {string} */ action, /** @type {string} */ label, primary = false) => {
      const b = /** @type {HTMLButtonElement} */ (el('button', primary ? 'primary' : '', label));
      b.type = 'button';
      b.dataset.action = action;
      buttons.push(b);
    };
    if (t.direction === 'in') {
      const who = isolate(t.from);
      progress.hidden = state !== 'receiving';
      progress.value = t.bytes;
      status.textContent = this.#fileStatusIn(t, who);
      if (state === 'offered') {
        button('accept-file', S.fileAccept, true);
        button('decline-file', S.fileDecline);
      } else if (state === 'receiving') {
        button('cancel-file', S.fileCancel);
      } else if (state === 'done' && t.url) {
        const a = /** @type {HTMLAnchorElement} */ (el('a', 'primary', S.fileSave));
        a.href = t.url;
        a.download = t.name;
        buttons.push(a);
      }
    } else {
      const legs = [...t.legs.values()];
      const sending = legs.filter((l) => l.state === 'sending');
      progress.hidden = state !== 'sending';
      progress.max = Math.max(1, sending.length * t.size);
      progress.value = sending.reduce((sum, l) => sum + l.bytes, 0);
      const done = legs.filter((l) => l.state === 'done').length;
      const waiting = legs.filter((l) => l.state === 'offered').length;
      status.textContent =
        state === 'sending' ? S.fileSending(formatPercent(progress.value, progress.max))
        : state === 'offered' ? S.fileWaiting(waiting)
        : state === 'done' ? S.fileSentTo(done)
        : state === 'cancelled' ? S.fileYouCancelled
        : S.fileNobody;
      const list = li.querySelector('.file-legs');
      if (list) {
        list.replaceChildren(
          ...legs.map((l) => {
            const row = el('li');
            row.dataset.member = l.member;
            row.dataset.state = l.state;
            row.append(nameEl('span', 'who', l.member), el('span', 'what', this.#legStatus(t, l)));
            return row;
          }),
        );
      }
      if (!isFinal(state)) button('cancel-file', S.fileCancel);
    }
    if (changed) actions.replaceChildren(...buttons);
    /** @type {HTMLElement} */ (actions).hidden = !actions.childElementCount;
  }

  /**
   * @param {import('./files.js').Incoming} t
   * @param {string} who the sender's name, isolated
   */
  #fileStatusIn(t, who) {
    switch (t.state) {
      case 'offered': return S.fileOffered;
      case 'receiving': return t.bytes || t.channel ? S.fileReceiving(formatPercent(t.bytes, t.size)) : S.fileStarting;
      case 'done': return S.fileReceived;
      case 'declined': return t.reason === 'too-large' ? S.fileTooLargeIn(formatBytes(this.room.files.maxFileSize)) : S.fileYouDeclined;
      case 'cancelled': return t.reason === 'by-us' ? S.fileYouCancelled : S.fileTheyCancelled(who);
      default: return this.#fileFailure(t.reason, who);
    }
  }

  /**
   * @param {import('./files.js').Outgoing} t
   * @param {import('./files.js').Leg} l
   */
  #legStatus(t, l) {
    switch (l.state) {
      case 'offered': return S.legWaiting;
      case 'sending': return formatPercent(l.bytes, t.size);
      case 'done': return S.legDone;
      case 'declined': return l.reason === 'too-large' ? S.legTooLarge : l.reason === 'busy' ? S.legBusy : S.legDeclined;
      case 'cancelled': return S.legCancelled;
      default: return l.reason === 'left' ? S.legLeft : l.reason === 'unreadable' ? S.legUnreadable : S.legLost;
    }
  }

  /**
   * @param {import('./files.js').FileReason} reason
   * @param {string} who
   */
  #fileFailure(reason, who) {
    switch (reason) {
      case 'left': return S.fileLeft(who);
      case 'ended': return S.fileEnded;
      case 'bad-data': return S.fileBadData(who);
      case 'timeout': return S.fileTimeout(who);
      default: return S.fileLost(who);
    }
  }

  #renderPeopleNow() {
    const list = $('#people');
    const items = [];
    const self = this.room.self;
    const host = this.room.access.host;
    const amHost = this.room.isHost;
    // The list is rebuilt: put focus back on the same button afterwards.
    const active = document.activeElement;
    const focused = active instanceof HTMLElement && list.contains(active)
      ? { peer: /** @type {HTMLElement | null} */ (active.closest('li[data-peer]'))?.dataset.peer, action: active.dataset.action }
      : null;
    /** @type {[string, string, boolean, boolean, boolean][]} name, state, audio, video, self */
    const rows = [];
    if (self) rows.push([self, 'connected', !!this.media.activeTrack('audio'), !!this.media.activeTrack('video'), true]);
    for (const m of this.room.members.values()) rows.push([m.name, m.link.state, m.audio !== false, m.video !== false, false]);
    // Raised hands first, in the order they went up; the rest as they joined.
    const hands = this.room.raisedHands();
    const rank = (/** @type {string} */ name, /** @type {boolean} */ isSelf) => {
      const i = hands.indexOf(isSelf ? '' : name);
      return i < 0 ? hands.length : i;
    };
    rows.sort((a, b) => rank(a[0], a[4]) - rank(b[0], b[4]));
    for (const [name, state, audio, video, isSelf] of rows) {
      const li = el('li', 'person');
      li.dataset.name = name;
      li.dataset.peer = name;
      li.dataset.state = state;
      if (host !== null && name === host) li.dataset.host = '';
      const av = el('span', 'avatar small', initial(name));
      av.style.setProperty('--hue', hue(name));
      av.setAttribute('aria-hidden', 'true');
      const who = el('span', 'who');
      who.append(nameEl('span', 'name', isSelf ? S.youSuffix(isolate(name)) : name));
      if (host !== null && name === host) who.append(el('span', 'role', S.host));
      if (state !== 'connected') {
        const label = state === 'reconnecting' ? S.stateReconnecting : state === 'failed' ? S.stateFailed : S.stateConnecting;
        who.append(el('span', 'state', label));
      }
      const icons = el('span', 'icons');
      if (hands.includes(isSelf ? '' : name)) {
        li.dataset.hand = 'up';
        const h = el('span', 'hand-mark', '✋');
        h.setAttribute('role', 'img');
        h.setAttribute('aria-label', S.handRaised);
        icons.append(h);
      }
      if (!audio) {
        const i = icon('i-mic-off');
        i.setAttribute('aria-hidden', 'false');
        i.setAttribute('role', 'img');
        i.setAttribute('aria-label', S.mutedLabel);
        icons.append(i);
      }
      if (!video) {
        const i = icon('i-cam-off');
        i.setAttribute('aria-hidden', 'false');
        i.setAttribute('role', 'img');
        i.setAttribute('aria-label', S.camOffLabel);
        icons.append(i);
      }
      li.append(av, who, icons);
      if (amHost && !isSelf) {
        const actions = el('span', 'person-actions');
        actions.append(
          this.#personButton('ask-mute', 'i-mic-off', S.askMuteLabel(isolate(name))),
          this.#personButton('remove', 'i-user-x', S.removeLabel(isolate(name))),
        );
        li.append(actions);
      }
      items.push(li);
    }
    list.replaceChildren(...items);
    if (focused?.peer !== undefined) {
      const li = [...list.children].find((e) => /** @type {HTMLElement} */ (e).dataset.peer === focused.peer);
      const b = li && focused.action ? li.querySelector(`[data-action=${focused.action}]`) : null;
      if (b instanceof HTMLElement) b.focus();
    }
    const n = rows.length;
    $('#people-count').textContent = S.peopleCount(n);
    $('#people-tab-count').textContent = String(n);
  }

  /**
   * A small icon button for the host's actions on a member.
   * @param {string} action
   * @param {string} iconId
   * @param {string} label
   */
  #personButton(action, iconId, label) {
    const b = el('button', 'icon-button');
    b.setAttribute('type', 'button');
    b.dataset.action = action;
    b.setAttribute('aria-label', label);
    b.title = label;
    b.append(icon(iconId));
    return b;
  }

  // ------------------------------------------------------- link, room, keys

  async #copyLink() {
    const room = this.room.room;
    if (!room) return;
    const url = roomUrl(room);
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch {
      const input = document.createElement('input');
      input.value = url;
      input.className = 'offscreen';
      document.body.append(input);
      input.select();
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      input.remove();
    }
    const b = /** @type {HTMLButtonElement} */ ($('[data-action=copy-link]'));
    const flash = $('.flash', b);
    flash.textContent = ok ? S.copied : S.copyFailed;
    b.dataset.copied = 'true';
    b.setAttribute('aria-label', ok ? S.copied : S.copyFailed);
    // On a phone the button sits in the "more" menu, out of sight: say it.
    if (b.offsetParent === null) this.#toast(ok ? S.copied : S.copyFailed, 2000);
    clearTimeout(this.#copyTimer);
    this.#copyTimer = setTimeout(() => {
      delete b.dataset.copied;
      b.setAttribute('aria-label', S.copyLink);
    }, 2000);
  }

  #openMoveDialog() {
    const input = /** @type {HTMLInputElement} */ ($('#move-room'));
    input.value = '';
    input.placeholder = this.room.room || '';
    this.#fieldError(input, '');
    const pw = /** @type {HTMLInputElement} */ ($('#move-password'));
    pw.value = '';
    this.#fieldError(pw, '');
    this.#movePasswordFor = '';
    /** @type {HTMLElement} */ ($('#move-password-field')).hidden = true;
    this.dialog.showModal();
    input.focus();
  }

  async #submitMove() {
    const input = /** @type {HTMLInputElement} */ ($('#move-room'));
    const name = this.room.self;
    if (!name) return;
    if (!input.value.trim()) input.value = randomRoomName();
    const room = checkRoom(input.value);
    if (!room.ok) {
      this.#fieldError(input, room.error === 'long' ? S.errRoomLong : S.errRoomInvalid);
      return;
    }
    if (room.value === this.room.room) {
      this.dialog.close();
      return;
    }
    const pwInput = /** @type {HTMLInputElement} */ ($('#move-password'));
    const password = this.#movePasswordFor === room.value ? pwInput.value : '';
    this.#fieldError(pwInput, '');
    try {
      await this.room.join(room.value, name, { password, access: this.#access });
      if (this.dialog.open) this.dialog.close();
    } catch (err) {
      const code = codeOf(err);
      if (this.body.dataset.view !== 'call') {
        // The move waited in a locked room's lobby (the old call is over),
        // or the call ended meanwhile: the answer belongs on the join page.
        if (this.body.dataset.view === 'waiting') this.#showJoinView();
        this.roomInput.value = room.value;
        this.#showJoinError(err, name, room.value);
        return;
      }
      if (code === 'password-required' || code === 'wrong-password') {
        this.#movePasswordFor = room.value;
        /** @type {HTMLElement} */ ($('#move-password-field')).hidden = false;
        this.#fieldError(pwInput, code === 'wrong-password' ? S.errWrongPassword : S.errPasswordRequired);
        pwInput.focus();
        pwInput.select();
        return;
      }
      const msg =
        code === 'name-taken'
          ? S.errNameTaken(name)
          : code === 'room-full'
            ? S.errRoomFull(room.value)
            : code === 'invalid-room'
              ? S.errRoomInvalid
              : code === 'denied'
                ? S.errDenied(room.value)
                : code === 'unauthorized'
                  ? S.errAccessRoom(room.value)
                  : this.#generalError(code);
      this.#fieldError(input, msg);
    }
  }

  /** @param {KeyboardEvent} e */
  #onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = /** @type {HTMLElement | null} */ (e.target);
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (this.dialog.open || this.roomMenu.open) return;
    const key = e.key.toLowerCase();
    if (key === 'm') this.#toggleMic();
    else if (key === 'v') this.#toggleCamera();
    else if (key === 'h' && this.room.inRoom) this.room.raiseHand(this.room.handRaisedAt === null);
    else if (key === 's' && this.room.inRoom) this.#toggleShare();
    else if (key === 'escape' && this.#panel) this.#closePanel();
  }

  /**
   * @param {string} text
   * @param {number} ms
   */
  #toast(text, ms) {
    const t = /** @type {HTMLElement} */ ($('#toast'));
    t.textContent = text;
    t.hidden = false;
    clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => {
      t.hidden = true;
    }, ms);
  }
}
