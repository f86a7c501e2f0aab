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

  it('room access: waiting page, knock cards, room menu, password prompt; desktop and phone', async () => {
    const host = await newPage(env.browser, { viewport: DESKTOP });
    await join(host, env.server.url, 'Ada', 'access-review');
    await host.click('[data-action=room-menu]');
    await host.waitForSelector('#room-menu[open]');
    await host.click('#room-menu [data-action=lock-room]');
    await host.waitForSelector('#room-menu [data-action=lock-room][aria-checked=true]');
    await shot(host, 'access-room-menu-desktop.png');
    await host.keyboard.press('Escape');
    const guests = [];
    for (const [viewport, tag, name] of [[DESKTOP, 'desktop', 'Grace'], [PHONE, 'phone', 'Linus']]) {
      const guest = await newPage(env.browser, { viewport });
      guests.push(guest);
      await guest.goto(`${env.server.url}/r/access-review`);
      await guest.waitForSelector('#preview-frame[data-video=on]', { timeout: T.join });
      await guest.fill('input[name=name]', /** @type {string} */ (name));
      await guest.click('form#join button[type=submit]');
      await guest.waitForSelector('body[data-view=waiting]', { timeout: T.join });
      await shot(guest, `access-waiting-${tag}.png`);
      await host.waitForSelector(`[data-knock="${name}"]`, { timeout: T.short });
    }
    await host.mouse.move(0, 0);
    await shot(host, 'access-knocks-desktop.png');
    await host.setViewportSize(PHONE);
    await until(() => host.$eval('#grid', (g) => g.classList.contains('narrow')), { what: 'narrow grid' });
    // The chat sheet opened on the wide screen would cover the call.
    if (await host.isVisible('#side')) await host.click('[data-action=close-panel]');
    await shot(host, 'access-knocks-phone.png');
    // On a phone the room menu is in the "more" menu.
    await host.click('[data-action=more]');
    await host.click('#more-menu [data-more=room-menu]');
    await host.fill('#room-menu input[name=room-password]', 'sesame');
    await host.click('#room-menu [data-action=set-password]');
    await host.waitForSelector('#call-view[data-protected]', { state: 'attached' });
    await shot(host, 'access-room-menu-phone.png');
    const late = await newPage(env.browser, { viewport: DESKTOP });
    await late.goto(`${env.server.url}/r/access-review`);
    await late.waitForSelector('#preview-frame[data-video=on]', { timeout: T.join });
    await late.fill('input[name=name]', 'Margaret');
    await late.click('form#join button[type=submit]');
    await late.waitForSelector('form#join input[name=password]', { state: 'visible', timeout: T.join });
    await shot(late, 'access-password-desktop.png');
    for (const p of [host, late, ...guests]) assert.deepEqual(p.problems, []);
    for (const p of [host, late, ...guests]) await p.context().close();
  });
});
