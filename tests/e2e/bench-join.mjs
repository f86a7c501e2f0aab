// Benchmark (not a test): time from clicking Join to the first remote video
// frame, for the 2nd and the 6th person joining a room (median of several
// runs), and the page's weight. Run inside the loopback-only namespace:
//
//   sh tests/e2e/run.sh bench [runs]        (default 5 runs)
//
// Each run: six people join a fresh room one after another; each waits on
// the join page until its camera preview is up (as a person would), clicks
// Join, and the page records when the first frame of any remote video is
// presented (requestVideoFrameCallback, or the video's first `resize`). The
// next person joins once everyone sees everyone.

import { gzipSync } from 'node:zlib';
import {
  closeBrowser, firstFrameProbe, launchBrowser, median, newPage, startServer, waitForMedia,
} from './helpers.mjs';

const RUNS = Math.max(1, Math.min(20, Number(process.argv[2]) || 5));
const PEOPLE = 6;
const MEASURED = [2, PEOPLE];
const STEP_TIMEOUT = 60_000;
const started = Date.now();

/**
 * @template T
 * @param {Promise<T>} p
 * @param {string} what
 * @returns {Promise<T>}
 */
function bounded(p, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} took over ${STEP_TIMEOUT} ms`)), STEP_TIMEOUT);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

const server = await startServer();
const browser = await launchBrowser();
/** @type {Record<number, number[]>} */
const results = Object.fromEntries(MEASURED.map((k) => [k, []]));
let weight = { files: 0, bytes: 0, gzip: 0, list: /** @type {string[]} */ ([]) };
const seen = new Set();

try {
  for (let run = 1; run <= RUNS; run += 1) {
    const room = `bench-${run}`;
    const pages = [];
    const names = [];
    for (let i = 1; i <= PEOPLE; i += 1) {
      const name = `p${i}`;
      const page = await newPage(browser, { init: firstFrameProbe });
      /** @type {Promise<void>[]} */
      const bodies = [];
      if (run === 1 && i === 1) {
        page.on('response', (r) => {
          const u = new URL(r.url());
          if (u.origin !== server.url || u.pathname === '/ws' || seen.has(u.pathname)) return;
          seen.add(u.pathname);
          bodies.push(r.body().then((b) => {
            weight.files += 1;
            weight.bytes += b.length;
            weight.gzip += gzipSync(b).length;
            weight.list.push(`${u.pathname} ${b.length}`);
          }, () => {}));
        });
      }
      await page.goto(`${server.url}/r/${room}`, { waitUntil: 'load' });
      await Promise.all(bodies);
      await page.waitForFunction(() => /** @type {any} */ (window).huddle?.media.result !== null);
      await page.fill('input[name=name]', name);
      await page.click('form#join button[type=submit]');
      pages.push(page);
      names.push(name);
      if (i > 1) {
        await bounded(
          page.waitForFunction(() => /** @type {any} */ (window).__bench.t1 !== null, null, { timeout: STEP_TIMEOUT }),
          `first frame for ${name}`,
        );
        const ms = await page.evaluate(() => /** @type {any} */ (window).__bench.t1 - /** @type {any} */ (window).__bench.t0);
        if (MEASURED.includes(i)) results[i].push(ms);
        // The next one joins a settled call.
        for (const [k, p] of pages.entries()) {
          await bounded(waitForMedia(p, names.filter((n) => n !== names[k])), 'mesh');
        }
      } else {
        await page.waitForSelector('body[data-view=call]');
      }
    }
    console.log(`run ${run}: ${MEASURED.map((k) => `joiner ${k}: ${results[k].at(-1)?.toFixed(0)} ms`).join(', ')}`);
    for (const p of pages) await p.context().close();
  }
} finally {
  await closeBrowser(browser);
  await server.stop();
}

console.log('');
console.log(`Join click → first remote video frame (median of ${RUNS} runs, ${PEOPLE}-person room):`);
for (const k of MEASURED) {
  const xs = results[k];
  console.log(`  joiner ${k}: median ${median(xs).toFixed(0)} ms  (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`);
}
console.log('');
console.log(`Page weight: ${(weight.bytes / 1024).toFixed(1)} KiB in ${weight.files} files (${(weight.gzip / 1024).toFixed(1)} KiB if gzipped)`);
for (const l of weight.list.sort()) console.log(`  ${l}`);
console.log(`bench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
