// Join -> first frame between huddle bot and Chromium (docs/benchmarks.md,
// "Media in the mesh"). Each run uses a fresh room:
//
//   bot joins:     the browser is in the room; the bot's own figure
//                  (join_to_first_frame_ms: WebSocket connect -> first
//                  decoded-ready VP8 frame from the browser).
//   browser joins: the bot is in the room; from the click on "Join" to the
//                  first frame the browser decoded from the bot (polled
//                  every 50 ms).
//
//   HUDDLE_BIN=target/release/huddle sh tests/e2e/run.sh node tests/e2e/bench-bot.mjs [runs]
//
// Run inside run.sh (a loopback-only namespace). Prints the samples and
// the medians.

import { killBots, startBot } from './bot-helpers.mjs';
import { closeBrowser, join, launchBrowser, newPage, startServer, stats, until } from './helpers.mjs';

const runs = Number(process.argv[2] || 10);
const median = (/** @type {number[]} */ v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

const server = await startServer();
const browser = await launchBrowser();
/** @type {number[]} */ const botJoins = [];
/** @type {number[]} */ const browserJoins = [];
try {
  for (let i = 0; i < runs; i++) {
    // The bot joins a room with the browser in it.
    {
      const room = `bench-a-${i}`;
      const page = await newPage(browser);
      await join(page, server.url, 'web', room);
      const bot = startBot(['--server', server.url, '--room', room, '--name', 'robo']);
      try {
        const r = await until(() => {
          const rep = bot.report('web');
          return rep && rep.join_to_first_frame_ms !== null ? rep : null;
        }, { what: 'a frame from the browser' });
        botJoins.push(r.join_to_first_frame_ms);
      } finally {
        await bot.stop();
        await page.context().close();
      }
    }
    // The browser joins a room with the bot in it.
    {
      const room = `bench-b-${i}`;
      const bot = startBot(['--server', server.url, '--room', room, '--name', 'robo']);
      const page = await newPage(browser);
      try {
        await until(() => bot.lines.some((l) => l.type === 'joined'), { what: 'the bot to join' });
        await page.goto(`${server.url}/`);
        await page.waitForFunction(() => 'huddle' in window);
        await page.fill('form#join input[name=name]', 'web');
        await page.fill('form#join input[name=room]', room);
        const t0 = Date.now();
        await page.click('form#join button[type=submit]');
        await until(async () => ((await stats(page)).robo?.video.framesDecoded || 0) > 0, {
          interval: 50,
          what: 'a decoded frame from the bot',
        });
        browserJoins.push(Date.now() - t0);
      } finally {
        await bot.stop();
        await page.context().close();
      }
    }
    console.log(`run ${i + 1}: bot joins ${botJoins.at(-1)} ms, browser joins ${browserJoins.at(-1)} ms`);
  }
} finally {
  killBots();
  await closeBrowser(browser);
  await server.stop();
}
console.log(`bot joins Chromium: median ${median(botJoins)} ms (${botJoins.join(', ')})`);
console.log(`Chromium joins bot: median ${median(browserJoins)} ms (${browserJoins.join(', ')})`);
