// Test 8: screenshots of the join page and of a 3-person call, on a desktop
// and on a phone, written to target/e2e-artifacts/ for people to look at.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { statSync } from 'node:fs';
import {
  artifactsDir, join, newPage, until, useServerAndBrowser, waitForMedia, T,
} from './helpers.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

describe('screenshots', () => {
  const env = useServerAndBrowser();
  const dir = artifactsDir();

  /**
   * @param {import('playwright-core').Page} page
   * @param {string} file
   */
  async function shot(page, file) {
    const p = path.join(dir, file);
    await page.screenshot({ path: p });
    assert.ok(statSync(p).size > 5000, `${file} written`);
  }

  it('join page, desktop and phone, light and dark', async () => {
    for (const [viewport, tag] of [[DESKTOP, 'desktop'], [PHONE, 'phone']]) {
      for (const scheme of /** @type {const} */ (['light', 'dark'])) {
        const page = await newPage(env.browser, { viewport, colorScheme: scheme });
        await page.goto(`${env.server.url}/r/design-review`);
        await page.waitForSelector('#preview-frame[data-video=on]', { timeout: T.join });
        await until(() => page.$eval('#preview', (v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0), { what: 'preview' });
        await page.fill('input[name=name]', 'Dana');
        const suffix = scheme === 'light' ? '' : '-dark';
        await shot(page, `join-${tag}${suffix}.png`);
        if (tag === 'desktop' && scheme === 'light') {
          // And with an error showing.
          await page.fill('input[name=room]', 'no spaces please');
          await page.click('form#join button[type=submit]');
          await page.waitForSelector('#room-error:not(:empty)');
          await shot(page, 'join-desktop-error.png');
        }
        await page.context().close();
      }
    }
  });

  it('3-person call, desktop and phone', async () => {
    const names = ['Ada', 'Grace', 'Linus'];
    const pages = [];
    for (const n of names) {
      const page = await newPage(env.browser, { viewport: DESKTOP });
      await page.goto(`${env.server.url}/r/design-review`);
      await join(page, env.server.url, n, 'design-review');
      pages.push(page);
    }
    const [me, ...rest] = pages;
    await waitForMedia(me, names.slice(1));
    await rest[0].fill('form#chat input[name=text]', 'Morning! Can everyone see my screen?');
    await rest[0].press('form#chat input[name=text]', 'Enter');
    await me.fill('form#chat input[name=text]', 'Yes, loud and clear!');
    await me.press('form#chat input[name=text]', 'Enter');
    await rest[1].fill('form#chat input[name=text]', 'Same here. Let\'s start with the release notes.');
    await rest[1].press('form#chat input[name=text]', 'Enter');
    await rest[1].click('[data-action=mute]');
    await until(async () => (await me.$$('#messages [data-from]')).length === 3, { timeout: T.short, what: 'chat' });
    await me.waitForSelector('[data-peer=Linus][data-audio=off]', { timeout: T.short });
    // Let the "Connected" labels fade.
    await me.waitForTimeout(2500);
    await me.mouse.move(0, 0);
    await shot(me, 'call-desktop.png');

    await me.click('[data-action=chat]');
    await me.setViewportSize(PHONE);
    await until(() => me.$eval('#grid', (g) => g.classList.contains('narrow')), { what: 'narrow grid' });
    await me.waitForTimeout(500);
    await shot(me, 'call-phone.png');
    await me.click('[data-action=chat]');
    await me.waitForTimeout(300);
    await shot(me, 'call-phone-chat.png');
    for (const p of pages) await p.context().close();
  });
});
