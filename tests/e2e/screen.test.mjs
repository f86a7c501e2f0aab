// Screen share: the sharer's screen goes out as an extra video track next
// to the camera, so the others see both; the screen tile
// ([data-peer=NAME][data-kind=screen]) is spotlighted and letterboxed; a
// late joiner sees an ongoing share; stopping (the button, or the browser
// ending the capture) removes the tile everywhere within 2 s. Headless
// Chromium captures a fake 1280×720 screen.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { artifactsDir, join, newPage, until, useServerAndBrowser, waitForMedia } from './helpers.mjs';

/** @param {string} name */
const screenOf = (name) => `#grid [data-peer="${name}"][data-kind=screen]`;
/** @param {string} name */
const cameraOf = (name) => `#grid [data-peer="${name}"]:not([data-kind])`;

/**
 * Frames decoded so far by the video of SELECTOR on PAGE.
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 */
const framesIn = (page, selector) =>
  page.$eval(`${selector} video`, (v) => /** @type {HTMLVideoElement} */ (v).getVideoPlaybackQuality().totalVideoFrames);

describe('screen share', () => {
  const env = useServerAndBrowser();

  it('shares next to the camera, reaches late joiners, and stops everywhere', async () => {
    const [a, b] = await Promise.all([newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'share');
    await join(b, env.server.url, 'ben', 'share');
    await waitForMedia(b, ['ann']);
    await waitForMedia(a, ['ben']);

    const clicked = Date.now();
    await a.click('[data-action=share-screen]');
    await until(() => a.getAttribute('[data-action=share-screen]', 'aria-pressed').then((v) => v === 'true'), { what: 'sharing' });
    const hint = await a.evaluate(() => /** @type {any} */ (window).huddle.room.screen.getVideoTracks()[0].contentHint);
    assert.equal(hint, 'detail');
    await b.waitForSelector(screenOf('ann'));
    await until(async () => (await framesIn(b, screenOf('ann'))) > 0, { what: 'a first screen frame at ben' });
    console.log(`# click share -> first screen frame at the other page: ${Date.now() - clicked} ms`);
    // The camera goes on: both tiles, both moving.
    const cam0 = await framesIn(b, cameraOf('ann'));
    const scr0 = await framesIn(b, screenOf('ann'));
    await until(async () => (await framesIn(b, cameraOf('ann'))) > cam0 + 5 && (await framesIn(b, screenOf('ann'))) > scr0 + 2, {
      what: 'camera and screen both moving at ben',
    });
    const size = await b.$eval(`${screenOf('ann')} video`, (v) => [/** @type {HTMLVideoElement} */ (v).videoWidth, /** @type {HTMLVideoElement} */ (v).videoHeight]);
    assert.ok(size[0] >= 640, `the screen arrives at ${size}`);
    // Spotlighted and letterboxed.
    assert.notEqual(await b.getAttribute(screenOf('ann'), 'data-pinned'), null);
    assert.equal(await b.$eval(`${screenOf('ann')} video`, (v) => getComputedStyle(v).objectFit), 'contain');
    await b.screenshot({ path: path.join(artifactsDir(), 'call-screen-share.png') });

    // A late joiner sees the ongoing share.
    const c = await newPage(env.browser);
    await join(c, env.server.url, 'cat', 'share');
    await c.waitForSelector(screenOf('ann'));
    await until(async () => (await framesIn(c, screenOf('ann'))) > 0, { what: 'the share at the late joiner' });

    // Stop with the button: gone everywhere within 2 s.
    const stopped = Date.now();
    await a.click('[data-action=share-screen]');
    await Promise.all([
      b.waitForSelector(screenOf('ann'), { state: 'detached', timeout: 2000 }),
      c.waitForSelector(screenOf('ann'), { state: 'detached', timeout: 2000 }),
    ]);
    console.log(`# stop -> tile gone at the others: ${Date.now() - stopped} ms`);
    assert.ok(await b.$(cameraOf('ann')), 'the camera tile stays');

    // Share again, then the browser ends the capture (its own "Stop sharing").
    await a.click('[data-action=share-screen]');
    await b.waitForSelector(screenOf('ann'));
    await until(async () => (await framesIn(b, screenOf('ann'))) > 0, { what: 'the second share at ben' });
    await a.evaluate(() => {
      const track = /** @type {any} */ (window).huddle.room.screen.getVideoTracks()[0];
      track.stop();
      track.dispatchEvent(new Event('ended'));
    });
    await b.waitForSelector(screenOf('ann'), { state: 'detached', timeout: 2000 });
    assert.equal(await a.getAttribute('[data-action=share-screen]', 'aria-pressed'), 'false');
    assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
    for (const p of [a, b, c]) await p.context().close();
  });
});
