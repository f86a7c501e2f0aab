// @ts-check
/**
 * ui.js — the only module that touches the DOM. It renders the join page
 * (form, camera preview, errors) and the call view (video grid, control bar,
 * chat and people panel), and turns clicks and keys into calls on Room and
 * LocalMedia. Every name and chat text goes in with `textContent`, never as
 * HTML. Every string a person reads comes from strings.js.
 *
 * Test hooks (kept stable): `form#join` with `input[name=name]` and
 * `input[name=room]`; tiles `[data-peer=NAME]` with a `<video>`, the own one
 * also `[data-self]`; `form#chat` with `input[name=text]`; chat entries
 * `[data-from=NAME]`; buttons `[data-action=mute|camera|leave]`; and on
 * `<body>`: `data-view` (join|call) and `data-signaling` (the socket state).
 */

import { MAX_CHAT_ENTRIES, MAX_CHAT_TEXT } from './limits.js';
import { S } from './strings.js';
import { checkName, checkRoom, randomRoomName } from './signaling.js';

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

/** One formatter for all chat times (making one per call is slow). */
const CLOCK = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' });

/** @param {number} millis */
function clock(millis) {
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
  const cols = narrow ? 1 : Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const byWidth = (W - GAP_PX * (cols - 1)) / cols;
  const byHeight = ((H - GAP_PX * (rows - 1)) / rows) * (16 / 9);
  const width = narrow && n > 3 ? W : Math.min(byWidth, byHeight);
  return { narrow, cols, rows, width: Math.max(80, Math.floor(width)) };
}

/**
 * @typedef {{el:HTMLElement, video:HTMLVideoElement, state:HTMLElement,
 *   stateTimer?:number}} Tile
 */

export class UI {
  /** @type {Map<string, Tile>} tiles by member name; the own one under '' */
  #tiles = new Map();
  #unread = 0;
  /** @type {'chat'|'people'|null} */
  #panel = null;
  /** @type {number | undefined} */
  #toastTimer;
  /** @type {number | undefined} */
  #copyTimer;
  #joining = false;
  /** Sizes the tiles on the next frame. */
  #layout = oncePerFrame(() => this.#layoutNow());
  /** Redraws the people list on the next frame. */
  #renderPeople = oncePerFrame(() => this.#renderPeopleNow());
  /** @type {import('./chat.js').ChatEntry[]} chat entries not on screen yet (see #appendChat) */
  #pendingChat = [];
  /** Puts the pending chat entries on screen on the next frame. */
  #flushChat = oncePerFrame(() => this.#flushChatNow());

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
    this.dialog = /** @type {HTMLDialogElement} */ ($('#room-dialog'));
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
    for (const input of [this.nameInput, this.roomInput]) {
      input.addEventListener('input', () => this.#fieldError(input, ''));
    }
    $('[data-action=preview-mute]').addEventListener('click', () => this.#toggleMic());
    $('[data-action=preview-camera]').addEventListener('click', () => this.#toggleCamera());

    const preview = /** @type {HTMLVideoElement} */ ($('#preview'));
    this.media.addEventListener('change', () => this.#renderMediaControls());
    this.media.start().then((r) => {
      // Only a stream with a track: an empty one would hold the page's
      // load event forever (a media element delays it until it has data).
      if (r.video) {
        preview.srcObject = this.media.stream;
        preview.play().catch(() => {});
      }
      const note = $('#media-note');
      let text = '';
      if (r.problem === 'unsupported') text = S.mediaUnsupported;
      else if (!r.audio && !r.video) text = r.problem === 'denied' ? S.mediaDenied : S.mediaNone;
      else if (!r.video) text = r.problem === 'denied' ? S.mediaDeniedAudioOnly : S.mediaAudioOnly;
      else if (!r.audio) text = S.mediaVideoOnly;
      note.textContent = text;
      this.#renderMediaControls();
    });
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
    this.#joining = true;
    this.joinButton.disabled = true;
    this.joinButton.textContent = S.joining;
    this.joinForm.setAttribute('aria-busy', 'true');
    try {
      await this.media.start();
      await this.room.join(room.value, name.value);
    } catch (err) {
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
    const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : '';
    switch (code) {
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
      default:
        return S.errGeneric;
    }
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
    if (this.dialog.open) this.dialog.close();
    document.title = S.appName;
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
    for (const tab of document.querySelectorAll('[role=tab]')) {
      tab.addEventListener('click', () => this.#openPanel(/** @type {'chat'|'people'} */ (/** @type {HTMLElement} */ (tab).dataset.tab)));
    }
    this.chatForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (this.room.sendChat(this.chatInput.value)) this.chatInput.value = '';
      this.chatInput.focus();
    });
    const moveForm = /** @type {HTMLFormElement} */ ($('form#move'));
    moveForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submitMove();
    });
    $('#move-room').addEventListener('input', () => this.#fieldError(/** @type {HTMLInputElement} */ ($('#move-room')), ''));
  }

  #wireRoom() {
    const room = this.room;
    const on = (/** @type {string} */ type, /** @type {(d:any)=>void} */ fn) =>
      room.addEventListener(type, (ev) => fn(/** @type {CustomEvent} */ (ev).detail));
    on('joined', (d) => this.#onJoined(d));
    on('resumed', () => this.#renderPeople());
    on('member-added', (d) => this.#addTile(d.name));
    on('member-removed', (d) => this.#removeTile(d.name));
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
        reason === 'replaced' || reason === 'protocol' ? this.#generalError(reason) : S.errRejoinFailed(d.room || '');
      this.#formMessage(msg);
    });
    room.chat.addEventListener('entry', (ev) => this.#appendChat(/** @type {CustomEvent} */ (ev).detail));
    room.chat.addEventListener('clear', () => {
      this.#pendingChat = [];
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
    const url = `/r/${encodeURIComponent(d.room)}`;
    // Keep the query (e.g. ?relay=1) so a reload behaves the same.
    if (location.pathname !== url) history.replaceState(null, '', url + location.search);
    this.#formMessage('');
    this.#showCallView();
    this.#renderPeople();
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

    const avatar = el('div', 'avatar');
    avatar.setAttribute('aria-hidden', 'true');
    avatar.append(el('span', '', initial(name)));

    const state = el('div', 'tile-state');
    const plate = el('div', 'nameplate');
    const muted = icon('i-mic-off', 'muted-icon');
    muted.setAttribute('aria-hidden', 'false');
    muted.setAttribute('role', 'img');
    muted.setAttribute('aria-label', S.mutedLabel);
    plate.append(muted, nameEl('span', 'name', self ? S.youSuffix(isolate(name)) : name));

    tile.append(video, avatar, state, plate);
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
    const { narrow, cols, width } = gridLayout(n, W, H);
    this.grid.dataset.cols = String(cols);
    this.grid.classList.toggle('narrow', narrow);
    this.grid.style.setProperty('--tile-w', `${width}px`);
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
      this.messages.scrollTop = this.messages.scrollHeight;
      if (this.body.dataset.view === 'call' && innerWidth >= NARROW_PX) this.chatInput.focus({ preventScroll: true });
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
      if (entry.kind === 'chat' && entry.self) ownSent = true;
      if (entry.kind === 'chat' && !entry.self) unread += 1;
    }
    list.append(batch);
    const excess = list.childElementCount - MAX_CHAT_ENTRIES;
    for (let i = 0; i < excess; i++) list.firstElementChild?.remove();
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
    const li = el('li', 'system');
    li.dataset.event = entry.event;
    li.dataset.name = entry.name;
    const name = isolate(entry.name);
    const text = entry.event === 'joined' ? S.joinedLine(name) : entry.event === 'left' ? S.leftLine(name) : S.youJoinedLine(name);
    li.append(el('span', '', text), time);
    return li;
  }

  #renderPeopleNow() {
    const list = $('#people');
    const items = [];
    const self = this.room.self;
    /** @type {[string, string, boolean, boolean, boolean][]} name, state, audio, video, self */
    const rows = [];
    if (self) rows.push([self, 'connected', !!this.media.activeTrack('audio'), !!this.media.activeTrack('video'), true]);
    for (const m of this.room.members.values()) rows.push([m.name, m.link.state, m.audio !== false, m.video !== false, false]);
    for (const [name, state, audio, video, isSelf] of rows) {
      const li = el('li', 'person');
      li.dataset.name = name;
      li.dataset.state = state;
      const av = el('span', 'avatar small', initial(name));
      av.style.setProperty('--hue', hue(name));
      av.setAttribute('aria-hidden', 'true');
      const who = el('span', 'who');
      who.append(nameEl('span', 'name', isSelf ? S.youSuffix(isolate(name)) : name));
      if (state !== 'connected') {
        const label = state === 'reconnecting' ? S.stateReconnecting : state === 'failed' ? S.stateFailed : S.stateConnecting;
        who.append(el('span', 'state', label));
      }
      const icons = el('span', 'icons');
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
      items.push(li);
    }
    list.replaceChildren(...items);
    const n = rows.length;
    $('#people-count').textContent = S.peopleCount(n);
    $('#people-tab-count').textContent = String(n);
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
    try {
      await this.room.join(room.value, name);
      if (this.dialog.open) this.dialog.close();
    } catch (err) {
      const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : '';
      const msg =
        code === 'name-taken'
          ? S.errNameTaken(name)
          : code === 'room-full'
            ? S.errRoomFull(room.value)
            : code === 'invalid-room'
              ? S.errRoomInvalid
              : this.#generalError(code);
      this.#fieldError(input, msg);
    }
  }

  /** @param {KeyboardEvent} e */
  #onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = /** @type {HTMLElement | null} */ (e.target);
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (this.dialog.open) return;
    const key = e.key.toLowerCase();
    if (key === 'm') this.#toggleMic();
    else if (key === 'v') this.#toggleCamera();
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
