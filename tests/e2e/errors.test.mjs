// Test 6 and the other errors a person can meet: name taken, room full,
// invalid name or room, server unreachable — the message shows under the
// right field and the form stays for another try. And a missing or denied
// camera/microphone: join with what is there and say so.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeBrowser, join, launchBrowser, newPage, startServer, stats, tileOf, until, waitForMedia, T,
} from './helpers.mjs';

describe('errors on the join form', () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer(['--max-room-size', '2']);
    browser = await launchBrowser();
  });
  after(async () => {
    await closeBrowser(browser);
    await server?.stop();
  });

  /**
   * Submits the form and waits for a message in SELECTOR.
   * @param {import('playwright-core').Page} page
   * @param {string} name
   * @param {string} room
   * @param {string} selector
   */
  async function tryJoin(page, name, room, selector) {
    await page.fill('form#join input[name=name]', name);
    await page.fill('form#join input[name=room]', room);
    await page.click('form#join button[type=submit]');
    await page.waitForSelector(`${selector}:not(:empty)`, { timeout: T.join });
    assert.equal(await page.getAttribute('body', 'data-view'), 'join', 'the form stays');
    assert.equal(await page.isVisible('form#join'), true);
    assert.equal(await page.isEnabled('form#join button[type=submit]'), true, 'Join can be clicked again');
    return (await page.textContent(selector)) || '';
  }

  it('name taken and room full: the message shows and the form stays', async () => {
    const a = await newPage(browser);
    const b = await newPage(browser);
    const c = await newPage(browser);
    await join(a, server.url, 'Alice', 'tiny');

    await b.goto(`${server.url}/r/tiny`);
    const taken = await tryJoin(b, 'alice', 'tiny', '#name-error');
    assert.match(taken, /already in this room/);
    assert.equal(await b.getAttribute('input[name=name]', 'aria-invalid'), 'true');
    assert.equal(await b.inputValue('input[name=name]'), 'alice', 'what was typed stays');

    // Another name works from the same form.
    await b.fill('input[name=name]', 'Bob');
    await b.click('form#join button[type=submit]');
    await b.waitForSelector('body[data-view=call]', { timeout: T.join });

    await c.goto(`${server.url}/`);
    const full = await tryJoin(c, 'Carol', 'tiny', '#room-error');
    assert.match(full, /full/);
    assert.equal(await c.inputValue('input[name=room]'), 'tiny');
    for (const p of [a, b, c]) assert.deepEqual(p.problems, []);
    for (const p of [a, b, c]) await p.context().close();
  });

  it('invalid name or room is explained before anything is sent', async () => {
    const p = await newPage(browser);
    await p.goto(`${server.url}/`);
    assert.match(await tryJoin(p, '   ', 'ok-room', '#name-error'), /Enter a name/);
    assert.match(await tryJoin(p, 'x'.repeat(33), 'ok-room', '#name-error'), /too long/);
    assert.match(await tryJoin(p, 'Dan', 'no spaces!', '#room-error'), /letters, digits/);
    // An empty room makes a fresh, unguessable one (web/js/roomname.js).
    await p.fill('input[name=name]', 'Dan');
    await p.fill('input[name=room]', '');
    await p.click('form#join button[type=submit]');
    await p.waitForSelector('body[data-view=call]', { timeout: T.join });
    assert.match(new URL(p.url()).pathname, /^\/r\/[a-z]+-[a-z]+-[2-9a-kmnp-z]{5}-[2-9a-kmnp-z]{5}$/);
    // The last name used is remembered.
    const again = await p.context().newPage();
    await again.goto(`${server.url}/r/somewhere`);
    assert.equal(await again.inputValue('input[name=name]'), 'Dan');
    assert.equal(await again.inputValue('input[name=room]'), 'somewhere');
    assert.equal(await again.textContent('#join-title'), 'Join somewhere');
    assert.equal(await again.evaluate(() => document.activeElement?.getAttribute('name')), 'name', 'a link asks for the name');
    await p.context().close();
  });

  it('server unreachable: says so, and the form stays', async () => {
    const other = await startServer();
    const p = await newPage(browser);
    await p.goto(`${other.url}/r/lonely`);
    await p.waitForFunction(() => 'huddle' in window);
    await other.stop();
    const msg = await tryJoin(p, 'Eve', 'lonely', '#form-error');
    assert.match(msg, /Cannot reach the server/);
    assert.deepEqual(p.problems, []);
    await p.context().close();
  });

  it('camera denied: joins with audio only and says so; nothing at all: receive only', async () => {
    const denyVideo = () => {
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async (c) => {
        if (c && c.video) throw new DOMException('denied', 'NotAllowedError');
        return real(c);
      };
    };
    const denyAll = () => {
      navigator.mediaDevices.getUserMedia = async () => {
        throw new DOMException('no device', 'NotFoundError');
      };
    };
    const host = await newPage(browser);
    await join(host, server.url, 'host', 'media');

    const voice = await newPage(browser, { init: denyVideo });
    await voice.goto(`${server.url}/r/media`);
    await voice.waitForSelector('#media-note:not(:empty)');
    assert.match(await voice.textContent('#media-note'), /audio only/);
    assert.equal(await voice.isDisabled('[data-action=preview-camera]'), true);
    await join(voice, server.url, 'voice', 'media');
    await voice.waitForSelector('#toast:not([hidden])');
    assert.match(await voice.textContent('#toast'), /audio only/);
    assert.equal(await voice.getAttribute('[data-self]', 'data-video'), 'off');
    // voice hears and sees host; host hears voice.
    await waitForMedia(voice, ['host']);
    await until(async () => (await stats(host)).voice?.audio.packetsReceived > 0, { what: 'audio from voice' });
    await host.waitForSelector(`${tileOf('voice')}[data-video=off]`);
    await voice.context().close();
    await host.waitForSelector(tileOf('voice'), { state: 'detached', timeout: T.short });

    const watcher = await newPage(browser, { init: denyAll });
    await watcher.goto(`${server.url}/r/media`);
    await watcher.waitForSelector('#media-note:not(:empty)');
    assert.match(await watcher.textContent('#media-note'), /still watch/);
    await join(watcher, server.url, 'watcher', 'media');
    await waitForMedia(watcher, ['host']);
    assert.equal(await watcher.isDisabled('[data-action=mute]'), true);
    assert.equal(await watcher.isDisabled('[data-action=camera]'), true);
    for (const p of [host, watcher]) assert.deepEqual(p.problems, []);
    for (const p of [host, watcher]) await p.context().close();
  });
});
