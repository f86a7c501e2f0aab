// Pin and full screen on a tile: a pinned tile is large on a row of its
// own with the others in a strip under it; double-click toggles the pin;
// the full-screen button puts the tile on the whole screen and back. And a
// call of six on a phone fits without scrolling.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { artifactsDir, join, newPage, tileOf, until, useServerAndBrowser, waitForMedia } from './helpers.mjs';

/**
 * @param {import('playwright-core').Page} page
 * @param {string} sel
 */
const box = async (page, sel) => {
  const b = await page.locator(sel).boundingBox();
  assert.ok(b, `${sel} has a box`);
  return b;
};

describe('tiles: pin, full screen, phones', () => {
  const env = useServerAndBrowser();

  it('pins with the button and by double-click, and goes full screen', async () => {
    const [a, b, c] = await Promise.all([newPage(env.browser), newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'pins');
    await join(b, env.server.url, 'ben', 'pins');
    await join(c, env.server.url, 'cat', 'pins');
    await waitForMedia(a, ['ben', 'cat']);
    await a.click('[data-action=chat]'); // close the side panel: the grid gets the width

    await a.hover(tileOf('ben'));
    await a.click(`${tileOf('ben')} [data-action=pin]`);
    await a.waitForSelector(`${tileOf('ben')}[data-pinned]`);
    assert.equal(await a.getAttribute(`${tileOf('ben')} [data-action=pin]`, 'aria-pressed'), 'true');
    await until(async () => {
      const big = await box(a, tileOf('ben'));
      const small = await box(a, tileOf('cat'));
      return big.width > 2.5 * small.width && big.y + big.height <= small.y + 1;
    }, { what: 'ben large above a strip with cat' });
    const self = await box(a, '#grid [data-self]');
    const cat = await box(a, tileOf('cat'));
    assert.ok(Math.abs(self.y - cat.y) < 1, 'the strip is one row');
    await a.screenshot({ path: path.join(artifactsDir(), 'call-pinned.png') });

    // Double-click another tile: it is pinned instead.
    await a.dblclick(tileOf('cat'));
    await a.waitForSelector(`${tileOf('cat')}[data-pinned]`);
    assert.equal(await a.$(`${tileOf('ben')}[data-pinned]`), null, 'one pinned tile at a time');
    // And again: nothing is pinned, the grid is back.
    await a.dblclick(tileOf('cat'));
    await a.waitForSelector('#grid:not([data-pinned])');
    await until(async () => {
      const x = await box(a, tileOf('ben'));
      const y = await box(a, tileOf('cat'));
      return Math.abs(x.width - y.width) < 1;
    }, { what: 'equal tiles again' });
    // Pins are each page's own.
    assert.equal(await b.$('#grid [data-pinned]'), null);

    // Full screen and back.
    await a.hover(tileOf('ben'));
    await a.click(`${tileOf('ben')} [data-action=fullscreen]`);
    await until(() => a.evaluate(() => /** @type {HTMLElement | null} */ (document.fullscreenElement)?.dataset.peer), {
      what: 'ben full screen',
    }).then((peer) => assert.equal(peer, 'ben'));
    await a.click(`${tileOf('ben')} [data-action=fullscreen]`);
    await until(() => a.evaluate(() => document.fullscreenElement === null), { what: 'full screen left' });
    assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
    for (const p of [a, b, c]) await p.context().close();
  });

  it('six people fit a phone without scrolling', async () => {
    const phone = { width: 390, height: 844 };
    const names = ['ann', 'ben', 'cat', 'dan', 'eve', 'fay'];
    const pages = [];
    for (const name of names) {
      const p = await newPage(env.browser, name === 'ann' ? { viewport: phone } : {});
      await join(p, env.server.url, name, 'phone6');
      pages.push(p);
    }
    const a = pages[0];
    await waitForMedia(a, names.slice(1));
    const grid = await box(a, '#grid');
    for (const name of names.slice(1)) {
      const t = await box(a, tileOf(name));
      assert.ok(t.y >= grid.y - 1 && t.y + t.height <= grid.y + grid.height + 1, `${name} fits the grid`);
    }
    assert.equal(await a.getAttribute('#grid', 'data-cols'), '2');
    assert.equal(await a.evaluate(() => document.querySelector('#grid')?.scrollHeight === document.querySelector('#grid')?.clientHeight), true);
    await a.screenshot({ path: path.join(artifactsDir(), 'call-phone-six.png') });

    // The controls are one row at the bottom, within a thumb's reach; the
    // rest is in the "more" menu, and its items do what the buttons do.
    const tops = await a.$$eval('.controls-main > .round, .controls-main > div', (els) =>
      els.filter((e) => /** @type {HTMLElement} */ (e).offsetParent !== null).map((e) => Math.round(e.getBoundingClientRect().top)));
    assert.equal(new Set(tops).size, 1, `one row of controls (tops ${tops})`);
    assert.ok(Math.min(...tops) > phone.height * 0.85, `the controls sit at the bottom (${tops[0]} of ${phone.height})`);
    await a.click('[data-action=more]');
    const items = await a.$$eval('#more-menu [data-more]', (els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.more));
    for (const want of ['settings', 'copy-link', 'change-room', 'people', 'room-menu']) assert.ok(items.includes(want), `more has ${want}: ${items}`);
    await a.screenshot({ path: path.join(artifactsDir(), 'call-phone-more.png') });
    await a.keyboard.press('Escape');
    await a.waitForSelector('#more-menu', { state: 'hidden' });
    assert.equal(await a.evaluate(() => document.activeElement?.getAttribute('data-action')), 'more', 'focus goes back to the button');
    await a.click('[data-action=more]');
    await a.click('#more-menu [data-more=settings]');
    await a.waitForSelector('dialog#settings[open]');
    for (const p of pages) await p.context().close();
  });
});
