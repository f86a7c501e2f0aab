// A member who is out to cause trouble: look-alike and invisible names are
// refused, right-to-left names are shown isolated, and a peer flooding the
// data channel cannot freeze the other tab (its excess is dropped and
// counted, the chat on screen stays bounded, and chat works afterwards).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeBrowser, join, launchBrowser, newPage, startServer, stats, tileOf, until, T } from './helpers.mjs';

/** Records the longest gap between animation frames in `window.__maxFrameGap`. */
const frameGapProbe = () => {
  const w = /** @type {any} */ (window);
  w.__maxFrameGap = 0;
  let last = performance.now();
  const tick = (/** @type {number} */ t) => {
    w.__maxFrameGap = Math.max(w.__maxFrameGap, t - last);
    last = t;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
};

describe('a hostile member', () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await closeBrowser(browser);
    await server?.stop();
  });

  it('cannot take a look-alike or invisible name, and RTL names are isolated', async () => {
    const a = await newPage(browser);
    const b = await newPage(browser);
    await join(a, server.url, 'alice', 'names');
    await b.goto(`${server.url}/r/names`);
    await b.waitForFunction(() => 'huddle' in window);
    for (const fake of ['аlice', 'ＡＬＩＣＥ']) {
      await b.fill('form#join input[name=name]', fake);
      await b.click('form#join button[type=submit]');
      await b.waitForSelector('#name-error:not(:empty)', { timeout: T.join });
      assert.match((await b.textContent('#name-error')) || '', /already in this room/, fake);
      assert.equal(await b.getAttribute('body', 'data-view'), 'join');
      assert.equal(await b.inputValue('input[name=name]'), fake, 'what was typed stays');
    }
    await b.fill('form#join input[name=name]', 'al\u200Bice');
    await b.click('form#join button[type=submit]');
    await until(async () => /not allowed/.test((await b.textContent('#name-error')) || ''), {
      timeout: T.short,
      what: 'invalid-name message',
    });

    // A right-to-left name with neutral characters: isolated wherever shown.
    const rtl = 'שרה (2)';
    await b.fill('form#join input[name=name]', rtl);
    await b.click('form#join button[type=submit]');
    await b.waitForSelector('body[data-view=call]', { timeout: T.join });
    await a.waitForSelector(`${tileOf(rtl)} .name`, { timeout: T.join });
    assert.equal(await a.getAttribute(`${tileOf(rtl)} .name`, 'dir'), 'auto');
    const line = await a.waitForSelector('#messages li.system[data-event=joined]:last-child');
    assert.equal(await line.textContent().then((t) => (t || '').includes(`\u2068${rtl}\u2069`)), true);
    await a.context().close();
    await b.context().close();
  });

  it('cannot freeze the other tab by flooding the data channel', async () => {
    const victim = await newPage(browser, { init: frameGapProbe });
    const attacker = await newPage(browser);
    await join(victim, server.url, 'victim', 'flood');
    await join(attacker, server.url, 'mallory', 'flood');
    await until(
      () => attacker.evaluate(() => /** @type {any} */ (window).huddle.room.members.get('victim')?.link.channel?.readyState === 'open'),
      { what: 'data channel open' },
    );
    await victim.evaluate(() => {
      /** @type {any} */ (window).__maxFrameGap = 0;
    });

    // 3,000 chat messages of 6,000 characters and 6,000 small ones, as fast
    // as the channel takes them (kept under the channel's buffer limit).
    const sent = await attacker.evaluate(async () => {
      const ch = /** @type {RTCDataChannel} */ (/** @type {any} */ (window).huddle.room.members.get('victim').link.channel);
      ch.bufferedAmountLowThreshold = 256 * 1024;
      const big = JSON.stringify({ type: 'chat', text: 'x'.repeat(6000), sent: Date.now() });
      const small = JSON.stringify({ type: 'chat', text: 'spam', sent: Date.now() });
      let n = 0;
      for (let i = 0; i < 3000; i++) {
        for (const m of [big, small, small]) {
          if (ch.bufferedAmount > 1024 * 1024) {
            await new Promise((r) => ch.addEventListener('bufferedamountlow', r, { once: true }));
          }
          ch.send(m);
          n += 1;
        }
      }
      while (ch.bufferedAmount > 0) await new Promise((r) => setTimeout(r, 20));
      return n;
    });
    const s = await until(
      async () => {
        const st = await stats(victim);
        return st.mallory && st.mallory.dropped > sent / 2 ? st : null;
      },
      { timeout: T.short, what: 'the flood counted as dropped' },
    );
    const shown = await victim.$$eval('#messages li.msg .text', (els) => els.map((e) => (e.textContent || '').length));
    const gap = await victim.evaluate(() => /** @type {any} */ (window).__maxFrameGap);
    console.log(`# flood: ${sent} sent, ${s.mallory.dropped} dropped, ${shown.length} shown, longest frame gap ${Math.round(gap)} ms`);
    assert.ok(shown.length <= 500, `at most 500 chat entries on screen (${shown.length})`);
    assert.ok(Math.max(...shown) <= 4000, 'chat text is capped at 4,000 characters');
    assert.ok(gap < 1000, `the tab kept drawing frames (longest gap ${Math.round(gap)} ms)`);

    // Once the flood stops, the attacker's ordinary chat gets through again.
    await new Promise((r) => setTimeout(r, 3500));
    await attacker.fill('form#chat input[name=text]', 'sorry');
    await attacker.press('form#chat input[name=text]', 'Enter');
    await until(
      () => victim.$$eval('#messages li.msg .text', (els) => els.some((e) => e.textContent === 'sorry')),
      { timeout: T.short, what: 'chat after the flood' },
    );
    assert.deepEqual(victim.problems, [], 'no page errors');
  });
});
