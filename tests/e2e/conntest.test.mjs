// "Test connection" on the join page (web/js/conntest.js, issue 14 item 4):
// with the embedded TURN server the verdict is `direct` with a relay round
// trip; with UDP to the TURN port dropped by nftables (in this test's own
// loopback-only namespace) it is `relay`, over TCP; with a TURN URL that
// nothing answers it is `failed`, with the ports to open; and under
// --auth-secret the page says it needs an invitation link, and with one
// the test runs.
//
// Network rule: everything stays on loopback; the nftables table lives in
// the namespace run.sh made, and is deleted after the test.

import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { HUDDLE_BIN, T, closeBrowser, freePort, launchBrowser, newPage, startServer } from './helpers.mjs';

// --auth-secret wants at least 32 bytes.
const SECRET = 'e2e-conntest-secret-6c0ffee-0123456789abcdef';
const NFT_TABLE = 'hud_conntest';

/** Things to stop after each test, last first, even when it fails. */
let cleanups = [];
afterEach(async () => {
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch {
      /* best effort */
    }
  }
  cleanups = [];
});

/**
 * Opens PATH on BASE, presses Test connection with the keyboard (it must be
 * reachable: focus + Enter), waits until the result is done and returns
 * what it shows.
 * @param {import('playwright-core').Browser} browser
 * @param {string} base
 * @param {string} [path]
 */
async function testConnection(browser, base, path = '/') {
  const page = await newPage(browser);
  cleanups.push(() => page.context().close());
  await page.goto(`${base}${path}`);
  await page.waitForFunction(() => 'huddle' in window);
  // Every state the result area goes through (a 401 is over in a blink).
  await page.evaluate(() => {
    const el = /** @type {HTMLElement} */ (document.querySelector('[data-connection-test]'));
    const w = /** @type {any} */ (window);
    w.__states = [];
    new MutationObserver(() => w.__states.push(el.dataset.state)).observe(el, { attributeFilter: ['data-state'] });
  });
  const t0 = Date.now();
  await page.focus('[data-action=test-connection]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-connection-test][data-state=done]', { timeout: 25_000 });
  const ms = Date.now() - t0;
  assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).__states), ['running', 'done']);
  const shown = await page.$eval('[data-connection-test]', (el) => ({
    verdict: /** @type {HTMLElement} */ (el).dataset.verdict,
    advice: /** @type {HTMLElement} */ (el).dataset.advice,
    live: el.getAttribute('aria-live'),
    title: el.querySelector('h2')?.textContent,
    kinds: Object.fromEntries([...el.querySelectorAll('li[data-kind]')].map((li) => [
      /** @type {HTMLElement} */ (li).dataset.kind, /** @type {HTMLElement} */ (li).dataset.found === 'true',
    ])),
    rtt: /** @type {HTMLElement | null} */ (el.querySelector('[data-rtt]:not([hidden])'))?.dataset.rtt,
    rttText: /** @type {HTMLElement | null} */ (el.querySelector('[data-rtt]:not([hidden])'))?.textContent,
    text: /** @type {HTMLElement} */ (el).innerText,
  }));
  assert.deepEqual(page.problems, []);
  console.log(`# ${path.replace(/\?.*/, '')}: ${shown.verdict} (${shown.advice}) in ${ms} ms`);
  return { page, ms, ...shown };
}

/** The port of the TURN-over-UDP URL a server hands out (from its GET /ice-servers). */
async function turnUdpPort(/** @type {string} */ base) {
  const r = await fetch(`${base}/ice-servers`);
  const { iceServers } = await r.json();
  const url = iceServers.flatMap((/** @type {any} */ s) => [s.urls].flat())
    .find((/** @type {string} */ u) => /^turn:.*\?transport=udp$/.test(u));
  return Number(/:(\d+)\?/.exec(url)?.[1]);
}

/** @param {string[]} args */
const nft = (...args) => execFileSync('nft', args, { stdio: 'pipe' });

describe('Test connection on the join page', () => {
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;

  before(async () => {
    // Both pages' relays are on loopback, which the relay refuses by default.
    server = await startServer(['--turn-listen', '127.0.0.1:0', '--turn-allowed-peer-ip', '127.0.0.0/8']);
    browser = await launchBrowser();
  });
  after(async () => {
    await closeBrowser(browser);
    await server?.stop();
  });

  it('embedded TURN: direct, with the relay round trip shown', async () => {
    const r = await testConnection(browser, server.url);
    assert.equal(r.verdict, 'direct', r.text);
    assert.equal(r.advice, 'all-good');
    assert.equal(r.live, 'polite');
    assert.deepEqual(r.kinds, { host: true, 'relay-udp': true, 'relay-tcp': true });
    assert.ok(Number(r.rtt) > 0, `rtt ${r.rtt}`);
    assert.match(String(r.rttText), /\d+ ms \(over UDP\)/);
    console.log(`# direct: done in ${r.ms} ms, relay RTT ${Number(r.rtt).toFixed(2)} ms`);
    // The same in Russian: the switch re-words the result in place.
    await r.page.selectOption('select[name=lang]', 'ru');
    assert.match(await r.page.textContent('[data-connection-test] h2') ?? '', /Соединение готово/);
    assert.match(await r.page.textContent('[data-connection-test] [data-rtt]') ?? '', /мс \(по UDP\)/);
  });

  it('UDP to the TURN port dropped: relay, over TCP', async () => {
    const port = await turnUdpPort(server.url);
    assert.ok(port > 0);
    nft('add', 'table', 'inet', NFT_TABLE);
    cleanups.push(() => nft('delete', 'table', 'inet', NFT_TABLE));
    nft('add', 'chain', 'inet', NFT_TABLE, 'out', '{ type filter hook output priority 0; }');
    nft('add', 'rule', 'inet', NFT_TABLE, 'out', 'udp', 'dport', String(port), 'counter', 'drop');
    const r = await testConnection(browser, server.url);
    assert.equal(r.verdict, 'relay', r.text);
    assert.equal(r.advice, 'udp-blocked');
    assert.deepEqual(r.kinds, { host: true, srflx: false, 'relay-udp': false, 'relay-tcp': true });
    assert.match(String(r.rttText), /over TCP/);
    assert.match(r.text, /blocks UDP/);
    // The rule really dropped the browser's UDP to the TURN port.
    const dropped = Number(/packets (\d+)/.exec(nft('list', 'table', 'inet', NFT_TABLE).toString())?.[1]);
    assert.ok(dropped > 0, `dropped ${dropped}`);
    console.log(`# relay: done in ${r.ms} ms, relay RTT ${Number(r.rtt).toFixed(2)} ms, ${dropped} UDP packets dropped`);
  });

  it('a TURN URL nothing answers: failed, with what to open', async () => {
    const dead = await freePort();
    const other = await startServer(['--turn-url', `turn:127.0.0.1:${dead}?transport=udp`, '--turn-secret', 'x']);
    cleanups.push(() => other.stop());
    const r = await testConnection(browser, other.url);
    assert.equal(r.verdict, 'failed', r.text);
    assert.equal(r.advice, 'nothing-reached');
    assert.deepEqual(r.kinds, { host: true, srflx: false, 'relay-udp': false });
    assert.equal(r.rtt, undefined);
    assert.match(r.text, new RegExp(`open UDP ${dead} or run huddle doctor`));
    // Gathering that found no relay ends the round trip too: about the
    // gathering bound (8 s), not that plus the round trip's (10 s).
    assert.ok(r.ms < 15_000, `${r.ms} ms`);
  });

  it('--auth-secret: without a token it needs an invitation; with one the test runs', async () => {
    const guarded = await startServer(['--auth-secret', SECRET]);
    cleanups.push(() => guarded.stop());
    const r = await testConnection(browser, guarded.url, '/r/team');
    assert.equal(r.verdict, 'failed');
    assert.equal(r.advice, 'needs-invitation');
    assert.match(r.text, /needs an invitation link/);
    assert.deepEqual(r.kinds, {});
    const token = await new Promise((resolve, reject) => {
      execFile(HUDDLE_BIN, ['token', '--room', 'team', '--auth-secret', SECRET], { timeout: T.short }, (err, out) =>
        err ? reject(err) : resolve(out.trim()));
    });
    // The room and the token go to /ice-servers: this server has no STUN
    // or TURN, so the verdict says only reachable networks connect.
    const ok = await testConnection(browser, guarded.url, `/r/team?access=${token}`);
    assert.equal(ok.verdict, 'direct', ok.text);
    assert.equal(ok.advice, 'no-servers');
    assert.match(ok.text, /only people whose networks can reach each other/);
  });
});
