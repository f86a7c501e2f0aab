// Issue 13, room access, as people in browsers meet it: the host's room
// password (asked for, refused when wrong, the name kept), the room menu
// from the keyboard, the lobby (wait,
// admit, deny, give up, unlock), the host's remove and ask-mute, the host
// role passing on, invitation links with operator tokens (the token leaves
// the address bar, expired and forged ones are explained, a resume carries
// it), and the random room names.

import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HUDDLE_BIN, closeBrowser, join, launchBrowser, newPage, remoteTiles, startProxiedServer, tileOf, until,
  useServerAndBrowser, waitForMedia, waitForStall, T,
} from './helpers.mjs';

/** @typedef {Awaited<ReturnType<typeof newPage>>} Page */

/**
 * CSS attribute value for NAME (names may hold quotes).
 * @param {string} name
 */
const q = (name) => `"${name.replace(/["\\]/g, '\\$&')}"`;

/**
 * Fills the join form and submits it, without waiting for the outcome.
 * @param {Page} page
 * @param {string} base
 * @param {string} name
 * @param {string} room
 * @param {{path?:string}} [opts] open PATH first (e.g. `/r/x?access=…`)
 */
async function submitJoin(page, base, name, room, opts = {}) {
  if (opts.path || !page.url().startsWith(base)) await page.goto(`${base}${opts.path || `/r/${room}`}`);
  await page.waitForFunction(() => 'huddle' in window);
  await page.fill('form#join input[name=name]', name);
  await page.fill('form#join input[name=room]', room);
  await page.click('form#join button[type=submit]');
}

/**
 * Waits until SELECTOR's text matches RE; returns the text.
 * @param {Page} page
 * @param {string} selector
 * @param {RegExp} re
 */
async function textMatches(page, selector, re) {
  let text = '';
  await until(async () => re.test((text = (await page.textContent(selector)) || '')), {
    timeout: T.join,
    what: `${selector} to say ${re} (says "${text}")`,
  });
  return text;
}

/** @param {Page} page */
async function openRoomMenu(page) {
  await page.click('[data-action=room-menu]');
  await page.waitForSelector('#room-menu[open] input[name=room-password]', { state: 'visible', timeout: T.short });
}

/** @param {Page} page */
async function closeRoomMenu(page) {
  await page.keyboard.press('Escape');
  await page.waitForSelector('#room-menu', { state: 'hidden', timeout: T.short });
}

/**
 * The host sets (string) or clears (null) the room's password from the menu.
 * @param {Page} page
 * @param {string | null} password
 */
async function setPassword(page, password) {
  await openRoomMenu(page);
  if (password === null) {
    await page.click('#room-menu [data-action=clear-password]');
    await page.waitForSelector('#call-view:not([data-protected])', { state: 'attached', timeout: T.short });
  } else {
    await page.fill('#room-menu input[name=room-password]', password);
    await page.click('#room-menu [data-action=set-password]');
    await page.waitForSelector('#call-view[data-protected]', { state: 'attached', timeout: T.short });
  }
  await closeRoomMenu(page);
}

/**
 * The host switches the lobby on or off from the menu.
 * @param {Page} page
 * @param {boolean} on
 */
async function setLocked(page, on) {
  await openRoomMenu(page);
  const sw = '#room-menu [data-action=lock-room]';
  assert.equal(await page.getAttribute(sw, 'aria-checked'), String(!on), 'the switch shows the current state');
  await page.click(sw);
  await page.waitForSelector(`${sw}[aria-checked="${on}"]`, { timeout: T.short });
  await page.waitForSelector(on ? '#call-view[data-locked]' : '#call-view:not([data-locked])', { state: 'attached', timeout: T.short });
  await closeRoomMenu(page);
}

/**
 * Opens the people panel (where the host's member actions are).
 * @param {Page} page
 */
async function openPeople(page) {
  if (await page.isHidden('#panel-people')) await page.click('[data-action=people]');
  await page.waitForSelector('#panel-people', { state: 'visible', timeout: T.short });
}

/**
 * Counts the WebSockets the page opens (`window.__sockets`), to see that a
 * removed page does not reconnect.
 */
const countSockets = () => {
  const Real = window.WebSocket;
  // @ts-ignore
  window.__sockets = 0;
  // @ts-ignore
  window.WebSocket = class extends Real {
    /** @param {ConstructorParameters<typeof WebSocket>} args */
    constructor(...args) {
      super(...args);
      // @ts-ignore
      window.__sockets += 1;
    }
  };
};

/**
 * Every text frame PAGE's sockets receive, as they arrive.
 * @param {Page} page
 */
function framesReceived(page) {
  /** @type {string[]} */
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  return frames;
}

describe('room access: password', () => {
  const env = useServerAndBrowser();

  it('asked for on the join page, a wrong one refused with the name kept, the right one joins and the room shows protected', async () => {
    const ann = await newPage(env.browser);
    const annFrames = framesReceived(ann);
    await join(ann, env.server.url, 'Ann', 'pw-room');
    // The first member is the host: marked, and has the room menu.
    await ann.waitForSelector('#grid [data-self][data-host]', { timeout: T.short });
    assert.equal(await ann.isVisible('[data-action=room-menu]'), true, 'the host has the room menu');
    assert.equal(await ann.getAttribute('[data-action=room-menu]', 'aria-haspopup'), 'dialog');
    await setPassword(ann, 'open sesame');
    assert.equal(await ann.isVisible('#flag-protected'), true, 'the host sees the lock too');

    const bob = await newPage(env.browser);
    const bobFrames = framesReceived(bob);
    await submitJoin(bob, env.server.url, 'Bob', 'pw-room');
    await bob.waitForSelector('form#join input[name=password]', { state: 'visible', timeout: T.join });
    assert.match(await textMatches(bob, '#password-error', /\S/), /has a password/);
    assert.equal(await bob.getAttribute('body', 'data-view'), 'join');
    assert.equal(await bob.evaluate(() => document.activeElement?.getAttribute('name')), 'password', 'the cursor is in the password field');
    assert.equal(await bob.getAttribute('input[name=password]', 'aria-invalid'), 'true');

    await bob.fill('form#join input[name=password]', 'open says me');
    await bob.click('form#join button[type=submit]');
    await textMatches(bob, '#password-error', /not right/);
    assert.equal(await bob.getAttribute('body', 'data-view'), 'join');
    assert.equal(await bob.inputValue('input[name=name]'), 'Bob', 'the name stays');
    assert.equal(await bob.inputValue('input[name=room]'), 'pw-room', 'the room stays');
    assert.equal(await bob.inputValue('input[name=password]'), 'open says me', 'what was typed stays, to correct it');

    await bob.fill('form#join input[name=password]', 'open sesame');
    await bob.click('form#join button[type=submit]');
    await bob.waitForSelector('body[data-view=call] #call-view[data-protected]', { timeout: T.join });
    assert.equal(await bob.isVisible('#flag-protected'), true, 'the lock shows beside the room name');
    await waitForMedia(bob, ['Ann']);
    await waitForMedia(ann, ['Bob']);

    // Bob sees who is host, and has no host controls.
    await bob.waitForSelector(`${tileOf('Ann')}[data-host]`, { timeout: T.short });
    await bob.waitForSelector(`#people li[data-peer="Ann"][data-host]`, { state: 'attached', timeout: T.short });
    assert.equal(await bob.$(`${tileOf('Bob')}[data-host]`), null);
    assert.equal(await bob.isHidden('[data-action=room-menu]'), true, 'only the host has the room menu');
    assert.equal((await bob.$$('#people [data-action=remove], #people [data-action=ask-mute]')).length, 0);
    await ann.waitForSelector(`#people li[data-peer="Bob"] [data-action=remove]`, { state: 'attached', timeout: T.short });

    // The host clears it: everyone sees the room open again.
    await setPassword(ann, null);
    await bob.waitForSelector('#call-view:not([data-protected])', { state: 'attached', timeout: T.short });
    assert.equal(await bob.isHidden('#flag-protected'), true);

    // Nobody is ever sent the password, the host included.
    for (const frames of [annFrames, bobFrames]) {
      assert.ok(frames.some((f) => f.includes('"room-settings"')), 'settings were broadcast');
      assert.deepEqual(frames.filter((f) => f.includes('sesame')), [], 'no frame carries the password');
    }
    for (const p of [ann, bob]) assert.deepEqual(p.problems, []);
    for (const p of [ann, bob]) await p.context().close();
  });
});

describe('room access: the room menu from the keyboard', () => {
  const env = useServerAndBrowser();

  it('opens with Enter, focus inside, Space flips the lobby, a password set with Enter, Esc closes and focus returns', async () => {
    const page = await newPage(env.browser);
    await join(page, env.server.url, 'Kay', 'keys-room');
    await page.focus('[data-action=room-menu]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#room-menu[open]', { timeout: T.short });
    const focused = () => page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement).dataset.action || document.activeElement?.getAttribute('name'));
    assert.equal(await focused(), 'lock-room', 'focus starts on the first control');
    assert.equal(await page.getAttribute('[data-action=room-menu]', 'aria-expanded'), 'true');
    await page.keyboard.press('Space');
    await page.waitForSelector('#room-menu [data-action=lock-room][aria-checked=true]', { timeout: T.short });
    await page.waitForSelector('#call-view[data-locked]', { state: 'attached', timeout: T.short });
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'room-password');
    // Set with nothing typed: said, nothing sent.
    await page.keyboard.press('Enter');
    assert.match(await textMatches(page, '#room-password-error', /\S/), /Type a password/);
    await page.keyboard.type('letmein');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#call-view[data-protected]', { state: 'attached', timeout: T.short });
    assert.equal(await page.inputValue('input[name=room-password]'), '', 'the field is emptied once sent');
    assert.match((await page.textContent('#room-password-status')) || '', /has a password/);
    assert.equal(await page.isEnabled('[data-action=clear-password]'), true);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#room-menu', { state: 'hidden', timeout: T.short });
    assert.equal(await focused(), 'room-menu', 'focus is back on the menu button');
    assert.equal(await page.getAttribute('[data-action=room-menu]', 'aria-expanded'), 'false');
    // m still toggles the microphone once the menu is closed.
    await page.keyboard.press('m');
    await page.waitForSelector('[data-action=mute][data-on=false]', { timeout: T.short });
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});

describe('room access: lobby', () => {
  const env = useServerAndBrowser();

  it('the host locks; a joiner waits and is admitted; one is denied; one gives up; unlocking lets the rest in', async () => {
    const url = env.server.url;
    const room = 'lobby-room';
    const hal = await newPage(env.browser);
    await join(hal, url, 'Hal', room);
    await setLocked(hal, true);
    assert.equal(await hal.isVisible('#flag-locked'), true);

    // Cat waits, and is let in.
    const cat = await newPage(env.browser);
    await submitJoin(cat, url, 'Cat', room);
    await cat.waitForSelector('body[data-view=waiting] [data-action=stop-waiting]', { state: 'visible', timeout: T.join });
    assert.match((await cat.textContent('[data-view=waiting] #waiting-card')) || '', /Waiting for the host/);
    assert.match((await cat.textContent('#waiting-room')) || '', /lobby-room/);
    await hal.waitForSelector(`[data-knock="Cat"] [data-action=admit]`, { timeout: T.short });
    assert.match((await hal.textContent('#lobby-count')) || '', /1 person is waiting/);
    assert.equal(await hal.isVisible('#knock-badge'), true, 'the people button counts the waiting');
    assert.deepEqual(await remoteTiles(hal), [], 'a waiting joiner is not in the call');
    await hal.click(`[data-knock="Cat"] [data-action=admit]`);
    await cat.waitForSelector('body[data-view=call] #call-view[data-locked]', { timeout: T.join });
    await waitForMedia(cat, ['Hal']);
    await waitForMedia(hal, ['Cat']);
    await hal.waitForSelector('[data-knock="Cat"]', { state: 'detached', timeout: T.short });
    assert.equal(await hal.isHidden('#lobby-count'), true);

    // Dan waits and is turned away: told so on the join page, name kept.
    const dan = await newPage(env.browser);
    await submitJoin(dan, url, 'Dan', room);
    await dan.waitForSelector('body[data-view=waiting]', { timeout: T.join });
    await hal.click(`[data-knock="Dan"] [data-action=deny]`);
    await dan.waitForSelector('body[data-view=join] form#join', { timeout: T.join });
    assert.match(await textMatches(dan, '#form-error', /\S/), /did not let you in/);
    assert.equal(await dan.inputValue('input[name=name]'), 'Dan');
    await hal.waitForSelector('[data-knock="Dan"]', { state: 'detached', timeout: T.short });

    // Eve gives up: gone from the host's knocks.
    const eve = await newPage(env.browser);
    await submitJoin(eve, url, 'Eve', room);
    await eve.waitForSelector('body[data-view=waiting]', { timeout: T.join });
    await hal.waitForSelector('[data-knock="Eve"]', { timeout: T.short });
    await eve.click('[data-view=waiting] [data-action=stop-waiting]');
    await eve.waitForSelector('body[data-view=join] form#join', { timeout: T.short });
    assert.match(await textMatches(eve, '#form-error', /\S/), /stopped waiting/);
    await hal.waitForSelector('[data-knock="Eve"]', { state: 'detached', timeout: T.short });

    // Fay and Gus wait; unlocking lets both in without the host admitting.
    const fay = await newPage(env.browser);
    const gus = await newPage(env.browser);
    await submitJoin(fay, url, 'Fay', room);
    await submitJoin(gus, url, 'Gus', room);
    for (const p of [fay, gus]) await p.waitForSelector('body[data-view=waiting]', { timeout: T.join });
    await hal.waitForSelector('[data-knock="Gus"]', { timeout: T.short });
    assert.match((await hal.textContent('#lobby-count')) || '', /2 people are waiting/);
    await setLocked(hal, false);
    for (const p of [fay, gus]) await p.waitForSelector('body[data-view=call]', { timeout: T.join });
    await hal.waitForSelector('#knocks [data-knock]', { state: 'detached', timeout: T.short });
    await waitForMedia(hal, ['Cat', 'Fay', 'Gus']);
    assert.equal(await fay.$('#call-view[data-locked]'), null, 'the room shows unlocked');
    for (const p of [hal, cat, dan, eve, fay, gus]) assert.deepEqual(p.problems, []);
    for (const p of [hal, cat, dan, eve, fay, gus]) await p.context().close();
  });
});

describe('room access: the host moderates', () => {
  const env = useServerAndBrowser();

  it('ask-mute: the asked page turns its microphone off and says who asked', async () => {
    const mia = await newPage(env.browser);
    const ned = await newPage(env.browser);
    await join(mia, env.server.url, 'Mia', 'mod-room');
    await join(ned, env.server.url, 'Ned', 'mod-room');
    await waitForMedia(mia, ['Ned']);
    assert.equal(await ned.getAttribute('[data-action=mute]', 'data-on'), 'true');

    await openPeople(mia);
    await mia.click('#people li[data-peer="Ned"] [data-action=ask-mute]');
    await ned.waitForSelector('[data-action=mute][data-on=false]', { timeout: T.short });
    await ned.waitForSelector('#toast:not([hidden])', { timeout: T.short });
    assert.match((await ned.textContent('#toast')) || '', /Mia.* asked you to mute/);
    // The microphone is really off: Mia's side stops receiving audio.
    await mia.waitForSelector(`${tileOf('Ned')}[data-audio=off]`, { timeout: T.short });
    await waitForStall(mia, 'Ned', (m) => m.audio.packetsReceived);
    // Ned keeps the last word.
    await ned.click('[data-action=mute]');
    await ned.waitForSelector('[data-action=mute][data-on=true]', { timeout: T.short });
    for (const p of [mia, ned]) assert.deepEqual(p.problems, []);
    for (const p of [mia, ned]) await p.context().close();
  });

  it('remove: the removed page is back on the join page saying who, and does not reconnect', async () => {
    const url = env.server.url;
    const room = 'mod-room-2';
    const mia = await newPage(env.browser);
    const ned = await newPage(env.browser, { init: countSockets });
    await join(mia, url, 'Mia', room);
    await join(ned, url, 'Ned', room);
    await waitForMedia(mia, ['Ned']);
    await waitForMedia(ned, ['Mia']);

    await openPeople(mia);
    await mia.click('#people li[data-peer="Ned"] [data-action=remove]');
    await mia.waitForSelector(tileOf('Ned'), { state: 'detached', timeout: T.short });
    await ned.waitForSelector('body[data-view=join] form#join', { timeout: T.short });
    assert.equal(await textMatches(ned, '#form-error', /\S/), 'Mia removed you from the call.'.replace('Mia', '\u2068Mia\u2069'));
    assert.deepEqual(await remoteTiles(ned), [], 'the call is torn down');
    await ned.waitForSelector('body[data-signaling=closed]', { state: 'attached', timeout: T.short });
    const sockets = await ned.evaluate(() => /** @type {any} */ (window).__sockets);

    // Nothing to await here: the absence of a reconnect. The client's first
    // retry would come after 250 ms (±25 %), so 3 s leaves room for several.
    await ned.waitForTimeout(3000);
    assert.equal(await ned.evaluate(() => /** @type {any} */ (window).__sockets), sockets, 'no new socket after removal');
    assert.equal(await ned.getAttribute('body', 'data-view'), 'join');
    assert.deepEqual(await remoteTiles(mia), [], 'Ned did not come back');
    // And the server agrees Ned is gone: the name is free again.
    const ned2 = await newPage(env.browser);
    await join(ned2, url, 'Ned', room);
    await waitForMedia(mia, ['Ned']);
    for (const p of [mia, ned, ned2]) assert.deepEqual(p.problems, []);
    for (const p of [mia, ned, ned2]) await p.context().close();
  });

  it('the host role passes to the oldest member when the host leaves', async () => {
    const url = env.server.url;
    const room = 'succession';
    const [oli, pat, quin] = [await newPage(env.browser), await newPage(env.browser), await newPage(env.browser)];
    await join(oli, url, 'Oli', room);
    await join(pat, url, 'Pat', room);
    await join(quin, url, 'Quin', room);
    await quin.waitForSelector(`${tileOf('Oli')}[data-host]`, { timeout: T.short });
    assert.equal(await pat.isHidden('[data-action=room-menu]'), true);

    await oli.click('[data-action=leave]');
    await pat.waitForSelector('#grid [data-self][data-host]', { timeout: T.short });
    await pat.waitForSelector('[data-action=room-menu]', { state: 'visible', timeout: T.short });
    await textMatches(pat, '#toast', /You are now the host/);
    await quin.waitForSelector(`${tileOf('Pat')}[data-host]`, { timeout: T.short });
    assert.equal(await quin.isHidden('[data-action=room-menu]'), true);
    // The new host's commands work: lock, and Quin sees it.
    await setLocked(pat, true);
    await quin.waitForSelector('#call-view[data-locked]', { state: 'attached', timeout: T.short });
    for (const p of [oli, pat, quin]) assert.deepEqual(p.problems, []);
    for (const p of [oli, pat, quin]) await p.context().close();
  });
});

// --auth-secret wants at least 32 bytes.
const SECRET = 'e2e-auth-secret-4b1d2c7e-0123456789abcdef';

/**
 * `huddle token …` (prints a JWT).
 * @param {string[]} args
 * @returns {Promise<string>}
 */
function huddleToken(args) {
  return new Promise((resolve, reject) => {
    execFile(HUDDLE_BIN, ['token', ...args, '--auth-secret', SECRET], { timeout: T.short }, (err, stdout, stderr) => {
      if (err) reject(new Error(`huddle token failed: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/**
 * An HS256 JWT made here (for tokens `huddle token` will not make).
 * @param {object} claims
 * @param {string} secret
 */
function makeJwt(claims, secret) {
  const b64 = (/** @type {object} */ o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

describe('room access: invitation links (--auth-secret)', () => {
  const env = useServerAndBrowser(['--auth-secret', SECRET]);

  it('a link with a token joins, and the token leaves the address bar', async () => {
    const url = env.server.url;
    const token = await huddleToken(['--room', 'tok-room', '--ttl', '1h']);
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'huddle token prints a JWT');
    const page = await newPage(env.browser);
    await page.goto(`${url}/r/tok-room?access=${token}&relay=0`);
    await join(page, url, 'Tia', 'tok-room');
    const href = await page.evaluate(() => location.href);
    assert.doesNotMatch(href, /access/, 'no token in the address');
    assert.doesNotMatch(href, new RegExp(token.slice(-16)));
    assert.equal(new URL(href).pathname, '/r/tok-room');
    assert.equal(new URL(href).searchParams.get('relay'), '0', 'the rest of the query stays');
    // Copy link hands out the room, not the token.
    // The tab keeps it: leave, join again from the form.
    await page.click('[data-action=leave]');
    await page.waitForSelector('body[data-view=join]', { timeout: T.short });
    await page.click('form#join button[type=submit]');
    await page.waitForSelector('body[data-view=call]', { timeout: T.join });

    // Without a token this server lets nobody in, and says why.
    const none = await newPage(env.browser);
    await submitJoin(none, url, 'Uma', 'tok-room');
    assert.match(await textMatches(none, '#form-error', /\S/), /only lets people in with an invitation link/);
    assert.equal(await none.getAttribute('body', 'data-view'), 'join');
    for (const p of [page, none]) assert.deepEqual(p.problems, []);
    for (const p of [page, none]) await p.context().close();
  });

  it('an expired or forged token gets the unauthorized message; a token for another name says whose it is', async () => {
    const url = env.server.url;
    const now = Math.floor(Date.now() / 1000);
    const expired = makeJwt({ room: 'tok-room', exp: now - 60 }, SECRET);
    const forged = makeJwt({ room: 'tok-room', exp: now + 3600 }, 'not-the-secret');

    const p1 = await newPage(env.browser);
    await submitJoin(p1, url, 'Vic', 'tok-room', { path: `/r/tok-room?access=${expired}` });
    assert.match(await textMatches(p1, '#form-error', /\S/), /expired/);
    assert.equal(await p1.inputValue('input[name=name]'), 'Vic');

    const p2 = await newPage(env.browser);
    await submitJoin(p2, url, 'Wes', 'tok-room', { path: `/r/tok-room?access=${forged}` });
    assert.match(await textMatches(p2, '#form-error', /\S/), /not valid/);

    const forZed = await huddleToken(['--room', 'tok-room', '--name', 'Zed', '--ttl', '1h']);
    const p3 = await newPage(env.browser);
    await p3.goto(`${url}/r/tok-room?access=${forZed}`);
    await p3.waitForFunction(() => 'huddle' in window);
    assert.equal(await p3.inputValue('input[name=name]'), 'Zed', 'the link fills in its name');
    await submitJoin(p3, url, 'Yan', 'tok-room');
    assert.match(await textMatches(p3, '#name-error', /\S/), /for “\u2068?Zed\u2069?”/);
    assert.equal(await p3.getAttribute('body', 'data-view'), 'join');
    await p3.fill('input[name=name]', 'Zed');
    await p3.click('form#join button[type=submit]');
    await p3.waitForSelector('body[data-view=call]', { timeout: T.join });
    for (const p of [p1, p2, p3]) assert.deepEqual(p.problems, []);
    for (const p of [p1, p2, p3]) await p.context().close();
  });

  it('a host token makes its holder the host', async () => {
    const url = env.server.url;
    const plain = await huddleToken(['--room', 'host-room', '--ttl', '1h']);
    const hosting = await huddleToken(['--room', 'host-room', '--host', '--ttl', '1h']);
    const amy = await newPage(env.browser);
    await amy.goto(`${url}/r/host-room?access=${plain}`);
    await join(amy, url, 'Amy', 'host-room');
    await amy.waitForSelector('#grid [data-self][data-host]', { timeout: T.short });
    const boss = await newPage(env.browser);
    await boss.goto(`${url}/r/host-room?access=${hosting}`);
    await join(boss, url, 'Boss', 'host-room');
    await boss.waitForSelector('#grid [data-self][data-host]', { timeout: T.short });
    await amy.waitForSelector(`${tileOf('Boss')}[data-host]`, { timeout: T.short });
    await amy.waitForSelector('#grid [data-self]:not([data-host])', { timeout: T.short });
    assert.equal(await amy.isHidden('[data-action=room-menu]'), true);
    assert.equal(await boss.isVisible('[data-action=room-menu]'), true);
    for (const p of [amy, boss]) assert.deepEqual(p.problems, []);
    for (const p of [amy, boss]) await p.context().close();
  });

  it('a rejoin after a lost socket carries the token and the password again', async () => {
    // The grace period is short, so the page's resume comes too late and is
    // a fresh join: refused unless it carries the access token and the
    // room's password again (a resume in time needs neither).
    const { server, proxy } = await startProxiedServer(['--auth-secret', SECRET, '--reconnect-grace', '1s']);
    const browser = await launchBrowser();
    try {
      const token = await huddleToken(['--room', 'tok-resume', '--ttl', '1h']);
      const lee = await newPage(browser);
      await lee.goto(`${server.url}/r/tok-resume?access=${token}`);
      await join(lee, server.url, 'Lee', 'tok-resume');
      await setPassword(lee, 'hunter2');
      const kit = await newPage(browser);
      await submitJoin(kit, proxy.url, 'Kit', 'tok-resume', { path: `/r/tok-resume?access=${token}` });
      await kit.waitForSelector('form#join input[name=password]', { state: 'visible', timeout: T.join });
      await kit.fill('form#join input[name=password]', 'hunter2');
      await kit.click('form#join button[type=submit]');
      await kit.waitForSelector('body[data-view=call]', { timeout: T.join });
      await waitForMedia(lee, ['Kit']);
      const before = await kit.evaluate(() => /** @type {any} */ (window).huddle.client.session.token);

      proxy.pause(true);
      proxy.drop();
      // Lee sees Kit go once the grace period is over…
      await lee.waitForSelector(tileOf('Kit'), { state: 'detached', timeout: T.short });
      proxy.pause(false);
      // …and come back: Kit's page joined afresh, with token and password.
      await lee.waitForSelector(tileOf('Kit'), { timeout: T.join });
      await kit.waitForSelector('body[data-signaling=open]', { state: 'attached', timeout: T.join });
      assert.equal(await kit.getAttribute('body', 'data-view'), 'call', 'not sent back to the form');
      const after = await kit.evaluate(() => /** @type {any} */ (window).huddle.client.session.token);
      assert.notEqual(after, before, 'a new membership, not a resume');
      await waitForMedia(kit, ['Lee']);
      for (const p of [kit, lee]) assert.deepEqual(p.problems, []);
    } finally {
      await closeBrowser(browser);
      await proxy.close();
      await server.stop();
    }
  });
});

describe('random room names', () => {
  it('carry at least 64 bits, pass the room check, and are sampled without bias', async () => {
    const { ADJECTIVES, ANIMALS, ROOM_NAME_BITS, SUFFIX_ALPHABET, randomBelow, randomRoomName } = await import('../../web/js/roomname.js');
    const { checkRoom } = await import('../../web/js/signaling.js');
    assert.ok(ROOM_NAME_BITS >= 64, `${ROOM_NAME_BITS} bits`);
    for (const list of [ADJECTIVES, ANIMALS]) {
      assert.equal(new Set(list).size, list.length, 'no word twice (a repeat would lower the bits)');
      for (const w of list) assert.match(w, /^[a-z]+$/);
    }
    assert.equal(new Set(SUFFIX_ALPHABET).size, SUFFIX_ALPHABET.length);
    const names = Array.from({ length: 3000 }, () => randomRoomName());
    assert.equal(new Set(names).size, names.length, 'no repeats');
    for (const n of names) {
      assert.match(n, /^[a-z]+-[a-z]+-[2-9a-kmnp-z]{5}-[2-9a-kmnp-z]{5}$/);
      assert.deepEqual(checkRoom(n), { ok: true, value: n });
    }
    // Rejection sampling: values in the incomplete last block are drawn again.
    const draws = (/** @type {number[]} */ seq) => () => /** @type {number} */ (seq.shift());
    const seq3 = [2 ** 32 - 1, 2 ** 32 - 1, 7];
    assert.equal(randomBelow(3, draws(seq3)), 1, '2^32-1 is rejected for n=3 (modulo alone would give 0)');
    assert.equal(seq3.length, 0, 'drew three times');
    const big = 2 ** 31 + 1; // modulo alone would make [0, 2^31-1) twice as likely
    const seqBig = [2 ** 31 + 1, 2 ** 32 - 1, 5];
    assert.equal(randomBelow(big, draws(seqBig)), 5);
    assert.equal(seqBig.length, 0);
    assert.equal(randomBelow(256, draws([0x1ff])), 0xff, 'a power of two never rejects');
  });
});
