// Tests 1–3: three people in one room see and hear each other, chat reaches
// everyone with the right sender (HTML shown as text), and the microphone
// and camera buttons stop what the others receive.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeBrowser, join, launchBrowser, newPage, remoteTiles, startServer, stats, tileOf, until,
  waitForGrowth, waitForMedia, waitForStall, T,
} from './helpers.mjs';

// The third name is HTML: it must show as text and run nothing.
const EVIL = '<img src=x onerror=__pwn=1>';
const NAMES = ['alice', 'bob', EVIL];
const ROOM = 'standup';

describe('three-person call', () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Record<string, Awaited<ReturnType<typeof newPage>>>} */
  const pages = {};

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    for (const name of NAMES) {
      pages[name] = await newPage(browser);
      await pages[name].goto(`${server.url}/r/${ROOM}`);
      await join(pages[name], server.url, name, ROOM);
    }
  });

  after(async () => {
    try {
      for (const p of Object.values(pages)) assert.deepEqual(p.problems, [], 'no page errors');
    } finally {
      await closeBrowser(browser);
      await server?.stop();
    }
  });

  it('each sees two remote tiles with moving video and receives two audio tracks', async () => {
    for (const me of NAMES) {
      const others = NAMES.filter((n) => n !== me);
      const page = pages[me];
      await waitForMedia(page, others);
      for (const other of others) await waitForGrowth(page, other, (m) => m.video.framesDecoded, 10);
      const s = await stats(page);
      const audioTracks = others.reduce((sum, n) => sum + s[n].audioTracks, 0);
      assert.equal(audioTracks, 2, `${me} receives two audio tracks`);
      for (const n of others) assert.ok(s[n].audio.packetsReceived > 0, `${me} gets audio packets from ${n}`);
      // The own tile: muted, mirrored.
      const self = await page.$eval('[data-self] video', (v) => ({
        muted: /** @type {HTMLVideoElement} */ (v).muted,
        transform: getComputedStyle(v).transform,
      }));
      assert.equal(self.muted, true);
      assert.match(self.transform, /^matrix\(-1, 0, 0, 1/);
    }
  });

  it('chat from each reaches the other two with the right sender; HTML shows as text', async () => {
    const texts = {
      alice: 'hello from alice',
      bob: 'bob here 👋',
      [EVIL]: '<b>bold?</b><script>__pwn=2</script><img src=x onerror=__pwn=3>',
    };
    for (const me of NAMES) {
      const page = pages[me];
      await page.fill('form#chat input[name=text]', texts[me]);
      await page.press('form#chat input[name=text]', 'Enter');
    }
    for (const me of NAMES) {
      const page = pages[me];
      await until(
        async () => (await page.$$('#messages [data-from]')).length === 3,
        { timeout: T.short, what: `${me} to have 3 chat messages` },
      );
      for (const from of NAMES) {
        const sel = `#messages [data-from="${from.replace(/["\\]/g, '\\$&')}"] .text`;
        assert.equal(await page.textContent(sel), texts[from], `${me} shows ${from}'s text literally`);
      }
      const own = await page.$eval(`#messages .msg.self`, (e) => e.getAttribute('data-from'));
      assert.equal(own, me, 'own message is set apart');
      const injected = await page.evaluate(() => ({
        pwn: /** @type {any} */ (window).__pwn,
        csp: /** @type {any} */ (window).__csp,
        elements: document.querySelectorAll('#grid img, #grid b, #messages img, #messages b, #messages script, #people img').length,
      }));
      assert.deepEqual(injected, { pwn: undefined, csp: [], elements: 0 }, `${me}: nothing injected`);
      if (me !== EVIL) {
        assert.equal(await page.textContent(`${tileOf(EVIL)} .name`), EVIL, 'the HTML name is shown as text');
      }
    }
  });

  it('unread badge, copy link ("Copied" for 2 s), speaking ring', async () => {
    const a = pages.alice;
    const b = pages.bob;
    if ((await a.getAttribute('[data-action=chat]', 'aria-pressed')) === 'true') await a.click('[data-action=chat]');
    await a.waitForSelector('#side', { state: 'hidden' });
    await b.fill('form#chat input[name=text]', 'are you there?');
    await b.press('form#chat input[name=text]', 'Enter');
    await a.waitForSelector('#unread:not([hidden])', { timeout: T.short });
    assert.equal(await a.textContent('#unread'), '1');
    assert.match(await a.getAttribute('[data-action=chat]', 'aria-label') || '', /1 unread/);
    await a.click('[data-action=chat]');
    await a.waitForSelector('#unread', { state: 'hidden' });
    assert.equal(await a.isVisible('#messages [data-from=bob]:last-child'), true);

    // Catch what is copied (granting clipboard permissions through the
    // browser would revoke the fake camera's and end the tracks).
    await a.evaluate(() => {
      navigator.clipboard.writeText = async (text) => {
        /** @type {any} */ (window).__copied = text;
      };
    });
    await a.click('[data-action=copy-link]');
    await a.waitForSelector('[data-action=copy-link][data-copied] .flash', { state: 'visible', timeout: T.short });
    assert.equal(await a.textContent('[data-action=copy-link] .flash'), 'Copied');
    assert.equal(await a.evaluate(() => /** @type {any} */ (window).__copied), `${server.url}/r/${ROOM}`);
    const t0 = Date.now();
    await a.waitForSelector('[data-action=copy-link]:not([data-copied])', { timeout: T.short });
    const shown = Date.now() - t0;
    assert.ok(shown > 1000 && shown < 3500, `"Copied" shown about 2 s (${shown} ms after the check)`);

    // The fake microphone beeps: its level lights the ring now and then.
    await b.waitForSelector(`${tileOf('alice')}[data-speaking]`, { timeout: T.short });
  });

  it('microphone and camera buttons stop what the others receive, and turn back on', async () => {
    const a = pages.alice;
    const watchers = [pages.bob, pages[EVIL]];
    const audioPackets = (/** @type {any} */ m) => m.audio.packetsReceived;
    const frames = (/** @type {any} */ m) => m.video.framesDecoded;

    await a.click('[data-action=mute]');
    assert.equal(await a.evaluate(() => /** @type {any} */ (window).huddle.media.audioTrack.enabled), false);
    assert.equal(await a.getAttribute('[data-action=mute]', 'data-on'), 'false');
    for (const w of watchers) {
      await waitForStall(w, 'alice', audioPackets);
      await w.waitForSelector(`${tileOf('alice')}[data-audio=off]`, { timeout: T.short });
      await w.waitForSelector(`${tileOf('alice')} .muted-icon`, { state: 'visible', timeout: T.short });
      await w.waitForSelector(`${tileOf('alice')}:not([data-speaking])`, { timeout: T.short });
      // Video from alice still flows.
      await waitForGrowth(w, 'alice', frames, 5);
    }

    await a.click('[data-action=camera]');
    assert.equal(await a.evaluate(() => /** @type {any} */ (window).huddle.media.videoTrack.enabled), false);
    for (const w of watchers) {
      await waitForStall(w, 'alice', frames);
      await w.waitForSelector(`${tileOf('alice')}[data-video=off]`, { timeout: T.short });
    }

    // Keyboard shortcuts turn both back on (m, v outside text fields).
    await a.focus('[data-action=leave]');
    await a.keyboard.press('m');
    await a.keyboard.press('v');
    assert.equal(await a.evaluate(() => /** @type {any} */ (window).huddle.media.audioTrack.enabled), true);
    for (const w of watchers) {
      await waitForGrowth(w, 'alice', audioPackets, 20);
      await waitForGrowth(w, 'alice', frames, 5);
      await w.waitForSelector(`${tileOf('alice')}[data-audio=on][data-video=on]`, { timeout: T.short });
    }
    // Nobody else was affected.
    assert.deepEqual((await remoteTiles(pages.bob)).sort(), ['alice', EVIL].sort());
  });

  it('renegotiation: ICE restarts on both ends at once (glare) settle, media keeps flowing', async () => {
    const a = pages.alice;
    const b = pages.bob;
    /** @param {import('playwright-core').Page} page @param {string} peer */
    const ufrags = (page, peer) =>
      page.evaluate((p) => {
        const pc = /** @type {any} */ (window).huddle.room.members.get(p).link.pc;
        const u = (/** @type {RTCSessionDescription|null} */ d) => /a=ice-ufrag:(\S+)/.exec(d?.sdp || '')?.[1];
        return { local: u(pc.currentLocalDescription), remote: u(pc.currentRemoteDescription), state: pc.signalingState, conn: pc.connectionState };
      }, peer);
    const before = { a: await ufrags(a, 'bob'), b: await ufrags(b, 'alice') };
    // Both sides start an ICE restart in the same instant: two offers cross.
    await Promise.all([
      a.evaluate(() => /** @type {any} */ (window).huddle.room.members.get('bob').link.pc.restartIce()),
      b.evaluate(() => /** @type {any} */ (window).huddle.room.members.get('alice').link.pc.restartIce()),
    ]);
    await until(
      async () => {
        const x = await ufrags(a, 'bob');
        const y = await ufrags(b, 'alice');
        return x.state === 'stable' && y.state === 'stable' && x.conn === 'connected' && y.conn === 'connected' &&
          x.local !== before.a.local && y.local !== before.b.local && x.local === y.remote && y.local === x.remote;
      },
      { timeout: T.join, what: 'both ends to settle on new ICE credentials' },
    );
    await waitForGrowth(a, 'bob', (m) => m.video.framesDecoded, 10);
    await waitForGrowth(b, 'alice', (m) => m.video.framesDecoded, 10);
    await waitForGrowth(b, 'alice', (m) => m.audio.packetsReceived, 20);
  });
});
