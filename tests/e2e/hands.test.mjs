// Raise hand and reactions, over the data channel: a raised hand shows on
// the member's tile and in the people list (first raised first) for
// everyone, late joiners included; a reaction floats over the sender's tile
// for everyone and goes away; a peer cannot make the page float anything
// but the offered emoji.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { artifactsDir, join, newPage, tileOf, until, useServerAndBrowser, waitForMedia } from './helpers.mjs';

/** @param {string} name */
const personOf = (name) => `#people li[data-peer="${name}"]`;

describe('raise hand and reactions', () => {
  const env = useServerAndBrowser();

  it('hands go up and down for everyone, in order, and late joiners see them', async () => {
    const [a, b, c] = await Promise.all([newPage(env.browser), newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'hands');
    await join(b, env.server.url, 'ben', 'hands');
    await join(c, env.server.url, 'cat', 'hands');
    await waitForMedia(a, ['ben', 'cat']);
    await waitForMedia(b, ['ann', 'cat']);
    await waitForMedia(c, ['ann', 'ben']);

    // ben raises first (button), then cat (shortcut h).
    await b.click('[data-action=raise-hand]');
    assert.equal(await b.getAttribute('[data-action=raise-hand]', 'aria-pressed'), 'true');
    await a.waitForSelector(`${tileOf('ben')}[data-hand=up]`);
    await c.waitForSelector(`${tileOf('ben')}[data-hand=up]`);
    // Shortcuts work where typing does not go into a field.
    await c.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.blur());
    await c.keyboard.press('h');
    await a.waitForSelector(`${tileOf('cat')}[data-hand=up]`);
    await b.waitForSelector(`${tileOf('cat')}[data-hand=up]`);
    assert.equal(await a.$(`${tileOf('ann')}[data-hand]`), null, 'ann did not raise');

    // In ann's people list: raised hands first, ben before cat.
    await a.click('[data-action=people]');
    await a.waitForSelector(`${personOf('cat')}[data-hand=up]`);
    const order = await a.$$eval('#people li[data-peer]', (els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.peer));
    assert.deepEqual(order, ['ben', 'cat', 'ann']);

    // A late joiner learns both, in the same order.
    const d = await newPage(env.browser);
    await join(d, env.server.url, 'dan', 'hands');
    await d.waitForSelector(`${tileOf('ben')}[data-hand=up]`);
    await d.waitForSelector(`${tileOf('cat')}[data-hand=up]`);
    await d.click('[data-action=people]');
    await d.waitForSelector(`${personOf('cat')}[data-hand=up]`);
    const late = await d.$$eval('#people li[data-peer]', (els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.peer));
    assert.deepEqual(late.slice(0, 2), ['ben', 'cat']);
    await b.screenshot({ path: path.join(artifactsDir(), 'call-hand-raised.png') });

    // ben lowers: gone everywhere.
    await b.click('[data-action=raise-hand]');
    for (const p of [a, c, d]) await p.waitForSelector(`${tileOf('ben')}:not([data-hand])`);
    assert.equal(await b.getAttribute('[data-action=raise-hand]', 'aria-pressed'), 'false');
    for (const p of [a, b, c, d]) {
      assert.deepEqual(p.problems, []);
      await p.context().close();
    }
  });

  it('a reaction floats over the sender for everyone, then goes away', async () => {
    const [a, b] = await Promise.all([newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'react');
    await join(b, env.server.url, 'ben', 'react');
    await waitForMedia(a, ['ben']);
    await waitForMedia(b, ['ann']);

    await b.click('[data-action=react]');
    assert.equal(await b.getAttribute('[data-action=react]', 'aria-expanded'), 'true');
    await b.click('#reactions [data-reaction="🎉"]');
    assert.equal(await b.isHidden('#reactions'), true, 'the menu closes after a choice');
    // Over ben's tile at ann's, and over ben's own tile at ben's.
    await a.waitForSelector(`${tileOf('ben')} [data-reaction-float="🎉"]`, { timeout: 2000 });
    await b.waitForSelector('#grid [data-self] [data-reaction-float="🎉"]', { timeout: 2000 });
    await a.screenshot({ path: path.join(artifactsDir(), 'call-reaction.png') });
    await a.waitForSelector(`${tileOf('ben')} [data-reaction-float]`, { state: 'detached', timeout: 8000 });

    // From the keyboard: open, arrow to the next, Enter.
    await b.focus('[data-action=react]');
    await b.keyboard.press('Enter');
    await b.keyboard.press('ArrowRight');
    await b.keyboard.press('Enter');
    await a.waitForSelector(`${tileOf('ben')} [data-reaction-float="👏"]`, { timeout: 2000 });

    // Something that is not one of the reactions is dropped.
    await b.evaluate(() => {
      const link = /** @type {any} */ (window).huddle.room.members.get('ann').link;
      link.send({ type: 'reaction', emoji: 'EVIL<script>' });
      link.send({ type: 'reaction', emoji: '👍' });
    });
    await a.waitForSelector(`${tileOf('ben')} [data-reaction-float="👍"]`, { timeout: 2000 });
    const floats = await a.$$eval(`${tileOf('ben')} [data-reaction-float]`, (els) => els.map((e) => e.textContent));
    assert.ok(!floats.some((t) => t?.includes('EVIL')), `floats: ${floats}`);
    // A flood floats a bounded number at once.
    await b.evaluate(() => {
      const link = /** @type {any} */ (window).huddle.room.members.get('ann').link;
      for (let i = 0; i < 30; i++) link.send({ type: 'reaction', emoji: '😂' });
    });
    await until(async () => (await a.$$(`${tileOf('ben')} [data-reaction-float="😂"]`)).length > 0, { what: 'the flood arrives' });
    assert.ok((await a.$$(`${tileOf('ben')} [data-reaction-float]`)).length <= 6);
    assert.deepEqual([...a.problems, ...b.problems], []);
    await a.context().close();
    await b.context().close();
  });
});
