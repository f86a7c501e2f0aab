// huddle bot with the web client in headless Chromium: the bot's tile shows
// video, the bot receives the browser's frames, chat goes both ways, and the
// tile disappears when the bot leaves. Both join orders (the bot offers to
// the browser; the browser offers to the bot).

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { killBots, startBot } from './bot-helpers.mjs';
import {
  join, newPage, remoteTiles, tileOf, until, useServerAndBrowser, waitForMedia, T,
} from './helpers.mjs';

after(killBots);

/**
 * Sends chat TEXT from PAGE.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
async function say(page, text) {
  await page.fill('form#chat input[name=text]', text);
  await page.press('form#chat input[name=text]', 'Enter');
}

/**
 * Waits until PAGE shows a chat message from FROM with TEXT.
 * @param {import('playwright-core').Page} page
 */
async function waitForChat(page, from, text) {
  await until(
    async () => {
      const texts = await page.$$eval(`#messages [data-from="${from}"] .text`, (els) => els.map((e) => e.textContent));
      return texts.includes(text);
    },
    { timeout: T.short, what: `"${text}" from ${from} in the chat` },
  );
}

/**
 * The whole story with one join order.
 * @param {any} env
 * @param {'bot-first'|'browser-first'} order
 */
async function story(env, order) {
  const room = `bots-${order}`;
  const page = await newPage(env.browser);
  /** @type {ReturnType<typeof startBot> | undefined} */
  let bot;
  try {
    const botArgs = ['--server', env.server.url, '--room', room, '--name', 'robo', '--say', 'hello from robo', '--echo'];
    if (order === 'bot-first') {
      bot = startBot(botArgs);
      await until(() => bot?.lines.some((l) => l.type === 'joined'), { timeout: T.join, what: 'the bot to join' });
      await join(page, env.server.url, 'web', room);
    } else {
      await join(page, env.server.url, 'web', room);
      bot = startBot(botArgs);
    }
    const b = bot;
    // The browser shows the bot's video (videoWidth > 0) and gets its audio.
    await waitForMedia(page, ['robo']);
    // The bot receives the browser's frames.
    await until(() => (b.report('web')?.video_frames || 0) >= 15, { what: 'the bot to receive 15 frames from the browser' });
    const r = b.report('web');
    assert.ok(r.connected_ms !== null && r.first_frame_ms !== null, JSON.stringify(r));
    console.log(`# ${order}: bot join -> first frame from Chromium ${r.join_to_first_frame_ms} ms`);

    // Chat both ways: --say arrives when the channel opens; the browser's
    // message is printed by the bot and echoed back.
    await waitForChat(page, 'robo', 'hello from robo');
    await say(page, 'hi robo');
    await until(() => b.lines.some((l) => l.type === 'chat' && l.from === 'web' && l.text === 'hi robo'), {
      timeout: T.short,
      what: 'the bot to print the browser chat',
    });
    await waitForChat(page, 'robo', 'echo: hi robo');

    // A raised hand and a reaction from the browser show in the bot's output.
    await page.click('[data-action=raise-hand]');
    await until(() => b.lines.some((l) => l.type === 'hand' && l.from === 'web' && l.up === true), {
      timeout: T.short,
      what: 'the bot to print the raised hand',
    });
    await page.click('[data-action=react]');
    await page.click('#reactions [data-reaction="👍"]');
    await until(() => b.lines.some((l) => l.type === 'reaction' && l.from === 'web' && l.emoji === '👍'), {
      timeout: T.short,
      what: 'the bot to print the reaction',
    });

    // A file offered to the bot is declined (it never opens the channel).
    await page.setInputFiles('#chat input[type=file][name=file]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.waitForSelector('#messages [data-file][data-direction=out] .file-legs li[data-member=robo][data-state=declined]', { timeout: T.short });
    assert.ok(b.lines.some((l) => l.type === 'file-declined' && l.from === 'web' && l.name === 'notes.txt'), 'the bot prints the declined file');

    // Ctrl-C: the bot leaves cleanly and its tile goes.
    const gone = page.waitForSelector(tileOf('robo'), { state: 'detached', timeout: T.short });
    const code = await b.stop();
    await gone;
    assert.equal(code, 0, `the bot exits 0 on Ctrl-C:\n${b.stderr()}`);
    assert.deepEqual(await remoteTiles(page), []);
    const final = b.lines.filter((l) => l.type === 'report' && l.final && l.peer === 'web');
    assert.equal(final.length, 1, 'one final report about the browser');
    assert.deepEqual(page.problems, []);
  } finally {
    bot?.kill();
    await page.context().close();
  }
}

describe('huddle bot with the web client', () => {
  const env = useServerAndBrowser();

  it('bot joins after the browser (the bot offers)', async () => {
    await story(env, 'browser-first');
  });

  it('browser joins after the bot (the browser offers)', async () => {
    await story(env, 'bot-first');
  });
});
