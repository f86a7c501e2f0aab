// The join path's speed-ups keep working (docs/benchmarks.md, "Join → first
// frame"): the socket opened on page load is opened again when the server
// has closed it for not joining in time, before the click on Join; and the
// first frames of a two-person call go out at 360p, the call's own encoding
// (720p) following once the connection has settled.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeBrowser, join, launchBrowser, newPage, startServer, until, waitForMedia, T,
} from './helpers.mjs';

/** Counts the page's WebSocket opens in `window.__opens`. */
const countOpens = () => {
  const w = /** @type {any} */ (window);
  w.__opens = 0;
  const WS = w.WebSocket;
  w.WebSocket = class extends WS {
    /** @param {any[]} args */
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => { w.__opens += 1; });
    }
  };
};

/**
 * The video sender's scaleResolutionDownBy on PAGE towards member NAME.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
function videoScale(page, name) {
  return page.evaluate((n) => {
    const link = /** @type {any} */ (window).huddle.room.members.get(n)?.link;
    const sender = link?.pc.getSenders().find((/** @type {RTCRtpSender} */ s) => s.track?.kind === 'video');
    return sender?.getParameters().encodings?.[0]?.scaleResolutionDownBy ?? null;
  }, name);
}

describe('join path', () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer(['--join-timeout', '1s']);
    browser = await launchBrowser();
  });
  after(async () => {
    await closeBrowser(browser);
    await server?.stop();
  });

  it('a socket the server closed for not joining opens again when the person comes back to the form', async () => {
    const page = await newPage(browser, { init: countOpens });
    await page.goto(`${server.url}/r/warm`);
    await page.waitForFunction(() => /** @type {any} */ (window).__opens === 1, null, { timeout: T.join });
    // --join-timeout 1s: the server closes it (1008) and the page lets it be.
    await page.waitForFunction(() => /** @type {any} */ (window).huddle.client.state === 'closed', null, { timeout: T.join });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).__opens), 1, 'no reconnect loop while nobody is there');
    // Typing the name opens it again, before Join.
    await page.fill('input[name=name]', 'Ann');
    await page.waitForFunction(() => /** @type {any} */ (window).huddle.client.state === 'open', null, { timeout: T.join });
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).__opens), 2, 'opened again while typing, before Join');
    await page.click('form#join button[type=submit]');
    await page.waitForSelector('body[data-view=call]', { timeout: T.join });
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).__opens), 2, 'Join used that socket');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  it('the first frames go out at 360p; the call\'s encoding follows once connected', async () => {
    const a = await newPage(browser);
    const b = await newPage(browser);
    await join(a, server.url, 'a', 'start');
    await join(b, server.url, 'b', 'start');
    // Both ends start at half of the fake camera's 720p.
    assert.equal(await videoScale(b, 'a'), 2, 'the joiner starts at 360p');
    await until(async () => (await videoScale(a, 'b')) === 2, { timeout: T.short, what: 'the member to start at 360p' });
    await waitForMedia(a, ['b']);
    await waitForMedia(b, ['a']);
    // Then the two-person call's encoding (720p) on both ends.
    await until(async () => (await videoScale(b, 'a')) === 1 && (await videoScale(a, 'b')) === 1, {
      timeout: T.short,
      what: 'the call\'s encoding after the start',
    });
    assert.deepEqual([...a.problems, ...b.problems], []);
    await a.context().close();
    await b.context().close();
  });
});
