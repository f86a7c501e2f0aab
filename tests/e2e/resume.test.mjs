// Test 7: the signaling connection drops mid-call — the server side loses
// the TCP connection without a close frame (a proxy in between is cut), or
// the page's network is toggled off and on. Media keeps flowing, the page
// resumes with its token, and the others see no leave and no join.

import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeBrowser, join, launchBrowser, newPage, remoteTiles, startProxiedServer, startServer, stats, tileOf,
  until, waitForGrowth, waitForMedia, T,
} from './helpers.mjs';

const ROOM = 'flaky';

/**
 * Records on PAGE every removal of NAME's tile and every chat line about NAME.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function watch(page, name) {
  await page.evaluate((who) => {
    const w = /** @type {any} */ (window);
    w.__seen = [];
    new MutationObserver((muts) => {
      for (const m of muts) {
        // Tiles only: people list items carry data-peer too, and the list is redrawn.
        for (const n of m.removedNodes) {
          if (n instanceof HTMLElement && n.classList.contains('tile') && n.dataset.peer === who) w.__seen.push('tile removed');
        }
        for (const n of m.addedNodes) {
          if (n instanceof HTMLElement && n.classList.contains('tile') && n.dataset.peer === who) w.__seen.push('tile added');
          if (n instanceof HTMLElement && n.classList.contains('system') && n.dataset.name === who) {
            w.__seen.push(`line ${n.dataset.event}`);
          }
        }
      }
    }).observe(document.body, { childList: true, subtree: true });
  }, name);
}

/** @param {import('playwright-core').Page} page */
const seen = (page) => page.evaluate(() => /** @type {any} */ (window).__seen);

/**
 * A two-person call in ROOM on a fresh server started with FLAGS: the first
 * person reaches the server through a proxy (which the test can cut), the
 * second directly. `done()` checks both pages stayed clean and stops it all.
 * @param {import('playwright-core').Browser} browser
 * @param {string[]} flags
 * @param {string} room
 * @param {[string, string]} names
 */
async function proxiedPair(browser, flags, room, [viaProxy, direct]) {
  const { server, proxy } = await startProxiedServer(flags);
  /** @type {Awaited<ReturnType<typeof newPage>>[]} */
  const pages = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    openPairs.delete(stop);
    for (const p of pages) await p.context().close().catch(() => {});
    await proxy.close();
    await server.stop();
  };
  // Stopped after the test even when it fails halfway (see afterEach).
  openPairs.add(stop);
  const first = await newPage(browser);
  pages.push(first);
  await first.goto(`${proxy.url}/r/${room}`);
  await join(first, proxy.url, viaProxy, room);
  const second = await newPage(browser);
  pages.push(second);
  await join(second, server.url, direct, room);
  return {
    proxy,
    first,
    second,
    async done() {
      for (const p of pages) assert.deepEqual(p.problems, []);
      await stop();
    },
  };
}

/** Stoppers of the proxiedPair() calls still running. */
const openPairs = new Set();

describe('signaling drops mid-call', () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {Awaited<ReturnType<typeof startProxiedServer>>['proxy']} */
  let proxy;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof newPage>>[]} */
  let pages = [];

  before(async () => {
    ({ server, proxy } = await startProxiedServer(['--reconnect-grace', '20s', '--heartbeat-interval', '2s']));
    browser = await launchBrowser();
    // "flo" reaches the server through the proxy; the others directly.
    const flo = await newPage(browser);
    await flo.goto(`${proxy.url}/r/${ROOM}`);
    await join(flo, proxy.url, 'flo', ROOM);
    const gus = await newPage(browser);
    await join(gus, server.url, 'gus', ROOM);
    const hal = await newPage(browser);
    await join(hal, server.url, 'hal', ROOM);
    pages = [flo, gus, hal];
    await waitForMedia(flo, ['gus', 'hal']);
    await waitForMedia(gus, ['flo', 'hal']);
    await waitForMedia(hal, ['flo', 'gus']);
  });

  afterEach(async () => {
    for (const stop of [...openPairs]) await stop();
  });

  after(async () => {
    try {
      for (const p of pages) assert.deepEqual(p.problems, []);
    } finally {
      await closeBrowser(browser);
      await proxy?.close();
      await server?.stop();
    }
  });

  it('server-side loss without a close frame: media flows, the page resumes, nobody sees a leave', async () => {
    const [flo, gus, hal] = pages;
    await watch(gus, 'flo');
    await watch(hal, 'flo');
    await watch(flo, 'ida');
    const token = await flo.evaluate(() => /** @type {any} */ (window).huddle.client.session.token);

    // Cut every proxied connection, and refuse new ones for a while, so the
    // page has to retry with backoff.
    proxy.pause(true);
    proxy.drop();
    await flo.waitForSelector('body[data-signaling=reconnecting]', { timeout: T.short });
    await flo.waitForSelector('#banner:not([hidden])', { timeout: T.short });
    // Media keeps flowing both ways while signaling is down.
    await waitForGrowth(flo, 'gus', (m) => m.video.framesDecoded, 10, T.short);
    await waitForGrowth(gus, 'flo', (m) => m.video.framesDecoded, 10, T.short);

    // Meanwhile someone joins: their offer to flo waits in the server's queue.
    const ida = await newPage(browser);
    await join(ida, server.url, 'ida', ROOM);
    pages.push(ida);

    const before = proxy.accepted;
    proxy.pause(false);
    await flo.waitForSelector('body[data-signaling=open]', { timeout: T.join });
    assert.ok(proxy.accepted > before, 'the page opened a new socket');
    await flo.waitForSelector('#banner[hidden]', { state: 'attached', timeout: T.short });
    assert.equal(
      await flo.evaluate(() => /** @type {any} */ (window).huddle.client.session.token),
      token,
      'same membership (the token stays across a resume)',
    );
    // The queued offer from ida was answered: flo and ida see each other.
    await waitForMedia(flo, ['gus', 'hal', 'ida']);
    await waitForMedia(ida, ['flo', 'gus', 'hal']);
    await waitForGrowth(hal, 'flo', (m) => m.video.framesDecoded, 10);
    assert.deepEqual(await seen(gus), [], 'gus saw no leave or join of flo');
    assert.deepEqual(await seen(hal), [], 'hal saw no leave or join of flo');
    assert.deepEqual(await seen(flo), ['tile added', 'line joined'], 'flo saw ida join');
  });

  it('the page\'s network goes away longer than the server waits for pongs: same outcome', async () => {
    // A network outage, not a reset: nothing arrives either way and nothing
    // is closed. The server stops getting pongs and counts flo as lost; when
    // the network is back its close reaches the page, which resumes.
    // (Chromium's offline emulation cannot be used: it leaves open
    // WebSockets alone, and in a loopback-only namespace the browser reports
    // itself offline all along, so no online/offline events fire.)
    const [flo, gus, hal] = pages;
    await watch(gus, 'flo');
    await watch(hal, 'flo');
    const opened = proxy.accepted;
    proxy.stall(true);
    // Media does not use the signaling socket.
    await waitForGrowth(gus, 'flo', (m) => m.video.framesDecoded, 10, T.short);
    await waitForGrowth(flo, 'hal', (m) => m.video.framesDecoded, 10, T.short);
    // Two heartbeat intervals (2 s each here) and some slack.
    await new Promise((r) => setTimeout(r, 6000));
    proxy.stall(false);
    await until(
      async () => (await flo.getAttribute('body', 'data-signaling')) === 'open' && proxy.accepted > opened,
      { timeout: T.join, what: 'a fresh socket after the network came back' },
    );
    await waitForGrowth(flo, 'gus', (m) => m.video.framesDecoded, 10);
    await waitForGrowth(hal, 'flo', (m) => m.video.framesDecoded, 10);
    // Signaling works after the resume: a newcomer gets connected to flo.
    const jon = await newPage(browser);
    await join(jon, server.url, 'jon', ROOM);
    pages.push(jon);
    await waitForMedia(flo, ['gus', 'hal', 'ida', 'jon']);
    await waitForMedia(jon, ['flo', 'gus', 'hal', 'ida']);
    assert.deepEqual(await seen(gus), []);
    assert.deepEqual(await seen(hal), []);
  });

  it('leaving while the signaling socket is down still tells the others at once', async () => {
    const call = await proxiedPair(browser, ['--reconnect-grace', '30s'], 'gone', ['max', 'ned']);
    const { proxy: px, first: max, second: ned } = call;
    await waitForMedia(ned, ['max']);
    // max's socket dies and cannot come back for a while.
    px.pause(true);
    px.drop();
    await max.waitForSelector('body[data-signaling=reconnecting]', { timeout: T.short });
    // The network is back, and max leaves before the page's next retry.
    px.pause(false);
    const t0 = Date.now();
    await max.click('[data-action=leave]');
    await ned.waitForSelector(tileOf('max'), { state: 'detached', timeout: T.short });
    const gone = Date.now() - t0;
    // Not "within 2 s" as for a plain leave: after failed handshakes
    // Chromium delays a page's next WebSocket by a random, growing amount
    // (its per-process WebSocket throttler). Far below the grace is the point.
    assert.ok(gone < 10_000, `tile gone ${gone} ms after Leave (the grace period is 30 s)`);
    await call.done();
  });

  it('a resume that comes too late rejoins cleanly', async () => {
    const call = await proxiedPair(browser, ['--reconnect-grace', '1s'], 'late', ['kim', 'lou']);
    const { proxy: px, first: kim, second: lou } = call;
    await waitForMedia(kim, ['lou']);
    const token = await kim.evaluate(() => /** @type {any} */ (window).huddle.client.session.token);
    px.pause(true);
    px.drop();
    // lou sees kim leave once the grace period is over…
    await lou.waitForSelector(tileOf('kim'), { state: 'detached', timeout: T.short });
    px.pause(false);
    // …and join again when kim's page comes back with a fresh membership.
    await lou.waitForSelector(tileOf('kim'), { timeout: T.join });
    await kim.waitForSelector('body[data-signaling=open]', { timeout: T.join });
    const after = await kim.evaluate(() => /** @type {any} */ (window).huddle.client.session.token);
    assert.notEqual(after, token, 'a new membership');
    await waitForMedia(kim, ['lou']);
    await waitForMedia(lou, ['kim']);
    assert.equal(await kim.getAttribute('body', 'data-view'), 'call');
    assert.deepEqual((await stats(kim)).lou.audioTracks, 1);
    await call.done();
  });
});
