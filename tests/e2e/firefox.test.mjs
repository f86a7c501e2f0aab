// Interop: calls between Chromium and Firefox (issue 10). Chromium first then
// Firefox, Firefox first then Chromium, and three people (two Chromium pages
// and one Firefox): each sees moving video from and hears every other, chat
// goes every way over the data channel, mute stops the audio the others
// receive (and the camera switch the video), leave removes the tile
// everywhere.
//
// The steps are functions over a call's pages, whatever browser a page is
// in (firefox.mjs gives Firefox pages the Playwright methods the helpers
// use): a new feature's interop test (screen share, files) is a new step run
// in the same calls.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  closeBrowser, join, launchBrowser, newPage, remoteTiles, startServer, stats, tileOf, until,
  waitForGrowth, waitForMedia, waitForStall, T,
} from './helpers.mjs';
import { firefoxAvailable, isFirefox, openFirefox } from './firefox.mjs';

const have = firefoxAvailable();
if (!have.ok) throw new Error(`firefox.test.mjs: ${have.why}`);

/** @typedef {{name: string, browser: 'chromium'|'firefox'}} Person */
/** @typedef {Awaited<ReturnType<typeof newPage>> | Awaited<ReturnType<typeof openFirefox>>} AnyPage */

/**
 * A server, a Chromium when someone needs it, and one page per person who
 * joins ROOM in the order given; all closed after the enclosing describe.
 * @param {string} room
 * @param {Person[]} people
 */
function useCall(room, people) {
  const call = {
    /** @type {Awaited<ReturnType<typeof startServer>> | null} */
    server: null,
    /** @type {import('playwright-core').Browser | null} */
    chromium: null,
    /** @type {Record<string, AnyPage>} */
    pages: {},
    people,
    /** @param {string} name */
    page(name) {
      return /** @type {any} */ (this.pages[name]);
    },
  };
  before(async () => {
    call.server = await startServer();
    if (people.some((p) => p.browser === 'chromium')) call.chromium = await launchBrowser();
    for (const p of people) {
      const page = p.browser === 'firefox'
        ? await openFirefox({ init: CANVAS_SCREEN })
        : await newPage(/** @type {import('playwright-core').Browser} */ (call.chromium));
      call.pages[p.name] = page;
      await page.goto(`${call.server.url}/r/${room}`);
      await join(/** @type {any} */ (page), call.server.url, p.name, room);
    }
  });
  after(async () => {
    try {
      for (const [name, p] of Object.entries(call.pages)) {
        assert.deepEqual(p.problems, [], `no page errors on ${name}'s page`);
        const csp = await p.evaluate(() => /** @type {any} */ (window).__csp).catch(() => []);
        assert.deepEqual(csp, [], `no CSP violations on ${name}'s page`);
      }
    } finally {
      await Promise.all(Object.values(call.pages).filter(isFirefox).map((p) => /** @type {any} */ (p).close()));
      await closeBrowser(call.chromium || undefined);
      await call.server?.stop();
    }
  });
  return call;
}

/**
 * Headless Firefox has no screen to capture (getDisplayMedia rejects with
 * NotFoundError): a moving canvas stands in for the capture, so what huddle
 * does with a share (the extra transceiver, renegotiation, the screen tile
 * at the others) still runs in Firefox. Chromium's fake screen needs none.
 */
const CANVAS_SCREEN = () => {
  const md = navigator.mediaDevices;
  const real = md && md.getDisplayMedia ? md.getDisplayMedia.bind(md) : null;
  if (!real) return;
  md.getDisplayMedia = async (/** @type {any} */ c) => {
    try {
      return await real(c);
    } catch (e) {
      if (/** @type {Error} */ (e).name !== 'NotFoundError') throw e;
      const canvas = document.createElement('canvas');
      canvas.width = 1280;
      canvas.height = 720;
      const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
      let n = 0;
      setInterval(() => {
        n += 1;
        g.fillStyle = `hsl(${(n * 7) % 360} 60% 45%)`;
        g.fillRect(0, 0, 1280, 720);
        g.fillStyle = '#fff';
        g.font = '96px sans-serif';
        g.fillText(`screen ${n}`, 80, 360);
      }, 66);
      return canvas.captureStream(15);
    }
  };
};

const frames = (/** @type {any} */ m) => m.video.framesDecoded;
const audioPackets = (/** @type {any} */ m) => m.audio.packetsReceived;
const audioEnergy = (/** @type {any} */ m) => m.audio.totalAudioEnergy;

/**
 * Every page shows a tile with moving video for each of the others, and
 * receives and decodes their audio (packets, and audio energy: not silence).
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names who is in the call now
 */
async function seeAndHear(call, names) {
  for (const me of names) {
    const page = call.page(me);
    const others = names.filter((n) => n !== me);
    await waitForMedia(page, others);
    for (const other of others) {
      await waitForGrowth(page, other, frames, 10);
      await waitForGrowth(page, other, audioPackets, 20);
      await waitForGrowth(page, other, audioEnergy, 1e-4);
      const w = await page.$eval(`${tileOf(other)} video`, (/** @type {HTMLVideoElement} */ v) => v.videoWidth);
      assert.ok(w > 0, `${me} shows ${other}'s video (${w} px wide)`);
    }
    const s = await stats(page);
    for (const other of others) {
      assert.equal(s[other].audioTracks, 1, `${me} has one live audio track from ${other}`);
      assert.equal(s[other].videoTracks, 1, `${me} has one live video track from ${other}`);
      assert.equal(s[other].connectionState, 'connected', `${me}'s link to ${other}`);
      assert.ok(s[other].path, `${me} knows the candidate pair to ${other}`);
      assert.equal(s[other].path.local, 'host', `${me} reaches ${other} directly on loopback`);
    }
  }
}

/**
 * The speaking ring lights on every page: on each other's tile (their audio
 * energy as received) and on one's own (the microphone's level; Firefox's
 * stats have no energy for what is sent, so its page listens to the
 * microphone instead).
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 */
async function speakingRings(call, names) {
  for (const me of names) {
    const page = call.page(me);
    await page.waitForSelector('#grid [data-self][data-speaking]', { state: 'attached', timeout: T.short });
    for (const other of names.filter((n) => n !== me)) {
      await page.waitForSelector(`${tileOf(other)}[data-speaking]`, { state: 'attached', timeout: T.short });
    }
  }
}

/**
 * Each sends a line; each page shows every line once, with the right sender.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 */
async function chatEveryWay(call, names) {
  /** @type {Record<string, string>} */
  const texts = {};
  for (const me of names) {
    texts[me] = `hello from ${me} (${isFirefox(call.pages[me]) ? 'Firefox' : 'Chromium'}) — ünïcödé`;
    const page = call.page(me);
    await page.fill('form#chat input[name=text]', texts[me]);
    await page.press('form#chat input[name=text]', 'Enter');
  }
  for (const me of names) {
    const page = call.page(me);
    await until(
      async () => (await page.$$eval('#messages [data-from]', (/** @type {Element[]} */ els) => els.length)) >= names.length,
      { timeout: T.short, what: `${me} to show ${names.length} chat lines` },
    );
    const lines = await page.$$eval('#messages [data-from]', (/** @type {HTMLElement[]} */ els) =>
      els.map((e) => [e.dataset.from, e.querySelector('.text')?.textContent]),
    );
    assert.deepEqual(
      [...lines].sort(),
      names.map((n) => [n, texts[n]]).sort(),
      `${me} shows each line once with its sender`,
    );
  }
}

/**
 * WHO switches the microphone off: the others stop receiving audio from WHO
 * (while the video goes on) and show it muted; on again, audio flows.
 * Then the same with the camera.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 * @param {string} who
 */
async function muteAndCamera(call, names, who) {
  const page = call.page(who);
  const watchers = names.filter((n) => n !== who).map((n) => call.page(n));

  await page.click('[data-action=mute]');
  assert.equal(await page.getAttribute('[data-action=mute]', 'data-on'), 'false');
  for (const w of watchers) {
    await waitForStall(w, who, audioPackets);
    await w.waitForSelector(`${tileOf(who)}[data-audio=off]`, { timeout: T.short });
    await w.waitForSelector(`${tileOf(who)} .muted-icon`, { state: 'visible', timeout: T.short });
    await waitForGrowth(w, who, frames, 5);
  }
  await page.click('[data-action=mute]');
  for (const w of watchers) {
    await waitForGrowth(w, who, audioPackets, 20);
    await waitForGrowth(w, who, audioEnergy, 1e-4);
    await w.waitForSelector(`${tileOf(who)}[data-audio=on]`, { timeout: T.short });
  }

  await page.click('[data-action=camera]');
  for (const w of watchers) {
    await waitForStall(w, who, frames);
    await w.waitForSelector(`${tileOf(who)}[data-video=off]`, { timeout: T.short });
    await waitForGrowth(w, who, audioPackets, 20);
  }
  await page.click('[data-action=camera]');
  for (const w of watchers) {
    await waitForGrowth(w, who, frames, 10);
    await w.waitForSelector(`${tileOf(who)}[data-video=on][data-audio=on]`, { timeout: T.short });
  }
}

/**
 * WHO clicks Leave: its tile goes on every other page, and WHO is back on
 * the join page.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 * @param {string} who
 */
async function leave(call, names, who) {
  const others = names.filter((n) => n !== who);
  const gone = others.map((n) => call.page(n).waitForSelector(tileOf(who), { state: 'detached', timeout: T.short }));
  await call.page(who).click('[data-action=leave]');
  await Promise.all(gone);
  await call.page(who).waitForSelector('body[data-view=join] form#join', { timeout: T.short });
  for (const n of others) {
    assert.deepEqual((await remoteTiles(call.page(n))).sort(), others.filter((o) => o !== n).sort(), `${n}'s tiles`);
  }
}

/**
 * WHO (back on the join page) joins ROOM again: a fresh connection to each
 * member, who had dropped the old one.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names everyone in the call afterwards
 * @param {string} who
 * @param {string} room
 */
async function rejoin(call, names, who, room) {
  await join(call.page(who), /** @type {any} */ (call.server).url, who, room);
  for (const me of names) {
    await waitForMedia(call.page(me), names.filter((n) => n !== me));
  }
  for (const me of names.filter((n) => n !== who)) {
    await waitForGrowth(call.page(me), who, frames, 10);
    await waitForGrowth(call.page(who), me, frames, 10);
  }
}

/**
 * FROM's link on PAGE is up, yet nothing of KIND arrives from FROM.
 * @param {any} page
 * @param {string} from
 * @param {'audio'|'video'} kind
 */
async function receivesNothing(page, from, kind) {
  await until(async () => (await stats(page))[from]?.connectionState === 'connected', {
    timeout: T.join, what: `the link to ${from} to connect`,
  });
  const pick = kind === 'video' ? frames : audioPackets;
  await waitForStall(page, from, kind === 'video' ? (m) => m.video.packetsReceived : audioPackets, { window: 2000 });
  assert.equal(pick((await stats(page))[from]), 0, `nothing of ${from}'s ${kind} arrived`);
  await page.waitForSelector(`${tileOf(from)}[data-${kind}=off]`, { state: 'attached', timeout: T.short });
}

/**
 * WHO (back on the join page) switches camera and microphone off in the
 * preview and joins: a transceiver with no track on the offering side.
 * Nothing arrives until WHO switches them on in the call.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names everyone in the call afterwards
 * @param {string} who
 * @param {string} room
 */
async function joinSwitchedOff(call, names, who, room) {
  const page = call.page(who);
  await page.click('[data-action=preview-camera]');
  await page.click('[data-action=preview-mute]');
  await page.waitForSelector('[data-action=preview-camera][data-on=false]', { state: 'attached', timeout: T.short });
  await page.waitForSelector('[data-action=preview-mute][data-on=false]', { state: 'attached', timeout: T.short });
  await join(page, /** @type {any} */ (call.server).url, who, room);
  const others = names.filter((n) => n !== who);
  await waitForMedia(page, others);
  for (const n of others) {
    await receivesNothing(call.page(n), who, 'video');
    await receivesNothing(call.page(n), who, 'audio');
  }
  await page.click('[data-action=camera]');
  await page.click('[data-action=mute]');
  for (const n of others) {
    await waitForGrowth(call.page(n), who, frames, 10);
    await waitForGrowth(call.page(n), who, audioEnergy, 1e-4);
    await call.page(n).waitForSelector(`${tileOf(who)}[data-video=on][data-audio=on]`, { state: 'attached', timeout: T.short });
  }
}

/**
 * OFF switches the camera off; WHO (back on the join page) joins again, so
 * OFF answers with no video track on its sender. Nothing of OFF's video
 * arrives until OFF switches the camera on.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names everyone in the call afterwards
 * @param {string} who
 * @param {string} off
 * @param {string} room
 */
async function rejoinToCameraOff(call, names, who, off, room) {
  await call.page(off).click('[data-action=camera]');
  await join(call.page(who), /** @type {any} */ (call.server).url, who, room);
  await receivesNothing(call.page(who), off, 'video');
  await waitForGrowth(call.page(who), off, audioEnergy, 1e-4);
  await waitForGrowth(call.page(off), who, frames, 10);
  await call.page(off).click('[data-action=camera]');
  await waitForGrowth(call.page(who), off, frames, 10);
  await call.page(who).waitForSelector(`${tileOf(off)}[data-video=on]`, { state: 'attached', timeout: T.short });
}

/**
 * The longest chat line (MAX_CHAT_TEXT, 4,000 characters, most of them
 * three bytes in UTF-8) arrives whole both ways.
 * @param {ReturnType<typeof useCall>} call
 * @param {string} a
 * @param {string} b
 */
async function longChat(call, a, b) {
  for (const [from, to] of [[a, b], [b, a]]) {
    const text = `${from}:` + '語'.repeat(4000 - from.length - 1);
    const sent = await call.page(from).evaluate((/** @type {string} */ t) => /** @type {any} */ (window).huddle.room.sendChat(t), text);
    assert.equal(sent, true);
    const sel = `#messages [data-from="${from}"] .text`;
    await until(
      async () => (await call.page(to).$$eval(sel, (/** @type {Element[]} */ els) => els.map((e) => e.textContent))).includes(text),
      { timeout: T.short, what: `${to} to show ${from}'s 4,000-character line` },
    );
  }
}

/**
 * WHO's browser closes its window (pagehide sends leave): the tile goes on
 * every other page.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 * @param {string} who
 */
async function closeWindow(call, names, who) {
  const others = names.filter((n) => n !== who);
  const gone = others.map((n) => call.page(n).waitForSelector(tileOf(who), { state: 'detached', timeout: T.short }));
  const page = call.page(who);
  await (isFirefox(page) ? page.close() : page.close({ runBeforeUnload: true }));
  await Promise.all(gone);
}

/**
 * Both ends restart ICE at once (glare across browsers): perfect negotiation
 * settles on new credentials and media keeps flowing.
 * @param {ReturnType<typeof useCall>} call
 * @param {string} a
 * @param {string} b
 */
async function iceRestartGlare(call, a, b) {
  const pa = call.page(a);
  const pb = call.page(b);
  /** @param {any} page @param {string} peer */
  const ufrags = (page, peer) =>
    page.evaluate((/** @type {string} */ p) => {
      const pc = /** @type {any} */ (window).huddle.room.members.get(p).link.pc;
      const u = (/** @type {RTCSessionDescription|null} */ d) => /a=ice-ufrag:(\S+)/.exec(d?.sdp || '')?.[1];
      return { local: u(pc.currentLocalDescription), remote: u(pc.currentRemoteDescription), state: pc.signalingState, conn: pc.connectionState };
    }, peer);
  const was = { a: await ufrags(pa, b), b: await ufrags(pb, a) };
  const restart = (/** @type {string} */ p) => /** @type {any} */ (window).huddle.room.members.get(p).link.pc.restartIce();
  await Promise.all([pa.evaluate(restart, b), pb.evaluate(restart, a)]);
  /** What the two ends last showed, for the error. */
  let seen = '';
  await until(
    async () => {
      const x = await ufrags(pa, b);
      const y = await ufrags(pb, a);
      seen = JSON.stringify({ was, [a]: x, [b]: y });
      return x.state === 'stable' && y.state === 'stable' && x.conn === 'connected' && y.conn === 'connected' &&
        x.local !== was.a.local && y.local !== was.b.local && x.local === y.remote && y.local === x.remote;
    },
    { timeout: T.join, what: () => `${a} and ${b} to settle on new ICE credentials (seen: ${seen})` },
  );
  await waitForGrowth(pa, b, frames, 10);
  await waitForGrowth(pb, a, frames, 10);
  await waitForGrowth(pb, a, audioPackets, 20);
  await waitForGrowth(pa, b, audioPackets, 20);
}

/**
 * WHO shares its screen with the button: every other page gets the screen
 * tile with moving frames next to WHO's camera tile; the button again
 * removes it everywhere within 2 s.
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 * @param {string} who
 */
async function screenShare(call, names, who) {
  const screen = `#grid [data-peer="${who}"][data-kind=screen]`;
  const sharer = call.page(who);
  await sharer.click('[data-action=share-screen]');
  await until(async () => (await sharer.getAttribute('[data-action=share-screen]', 'aria-pressed')) === 'true', {
    timeout: T.short, what: `${who} to share`,
  });
  // Frames decoded from the screen's receiver (Firefox's video elements
  // count no frames of a MediaStream in getVideoPlaybackQuality).
  const framesOf = (/** @type {any} */ page) =>
    page.evaluate(async (/** @type {string} */ name) => {
      const link = /** @type {any} */ (window).huddle.room.members.get(name)?.link;
      const track = link?.screenStream.getVideoTracks()[0];
      const receiver = track && link.pc.getReceivers().find((/** @type {RTCRtpReceiver} */ r) => r.track === track);
      if (!receiver) return 0;
      let n = 0;
      (await receiver.getStats()).forEach((/** @type {any} */ s) => { if (s.type === 'inbound-rtp') n += s.framesDecoded || 0; });
      return n;
    }, who);
  for (const me of names.filter((n) => n !== who)) {
    const page = call.page(me);
    await page.waitForSelector(screen, { timeout: T.media });
    const f0 = await framesOf(page);
    await until(async () => (await framesOf(page)) > f0 + 5, { what: `${me} to see ${who}'s screen moving` });
    assert.ok(await page.$(`#grid [data-peer="${who}"]:not([data-kind])`), `${me} keeps ${who}'s camera tile`);
  }
  await sharer.click('[data-action=share-screen]');
  for (const me of names.filter((n) => n !== who)) {
    await call.page(me).waitForSelector(screen, { state: 'detached', timeout: 2000 });
  }
}

/**
 * FROM sends a file with the chat's file input; every other page accepts
 * it and holds exactly its bytes (SHA-256 of the received Blob, in-page).
 * @param {ReturnType<typeof useCall>} call
 * @param {string[]} names
 * @param {string} from
 */
async function fileToAll(call, names, from) {
  const data = crypto.randomBytes(3 * 1024 * 1024 + 333);
  const sha = crypto.createHash('sha256').update(data).digest('hex');
  const name = `from-${from}-${Date.now()}.bin`;
  await call.page(from).setInputFiles('#chat input[type=file][name=file]', { name, mimeType: 'application/octet-stream', buffer: data });
  for (const me of names.filter((n) => n !== from)) {
    const page = call.page(me);
    const offered = `#messages [data-file][data-direction=in][data-from="${from}"][data-state=offered]`;
    await page.waitForSelector(offered, { timeout: T.short });
    await page.click(`${offered} [data-action=accept-file]`);
    await page.waitForSelector(`#messages [data-file][data-from="${from}"][data-state=done] a[download]`, { timeout: T.media });
    const got = await page.evaluate(async (/** @type {string} */ n) => {
      const t = [.../** @type {any} */ (window).huddle.room.files.transfers.values()].find((x) => x.name === n);
      const digest = await crypto.subtle.digest('SHA-256', await t.blob.arrayBuffer());
      return { size: t.blob.size, sha: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('') };
    }, name);
    assert.deepEqual(got, { size: data.length, sha }, `${me} holds ${from}'s file byte for byte`);
  }
  const sender = call.page(from);
  for (const me of names.filter((n) => n !== from)) {
    await sender.waitForSelector(`#messages [data-file][data-direction=out] .file-legs li[data-member="${me}"][data-state=done]`, {
      state: 'attached', timeout: T.short,
    });
  }
}

describe('Chromium first, then Firefox', () => {
  const names = ['crom', 'fox'];
  const call = useCall('cf', [{ name: 'crom', browser: 'chromium' }, { name: 'fox', browser: 'firefox' }]);

  it('each sees moving video from and hears the other', () => seeAndHear(call, names));
  it('speaking rings light for oneself and the other', () => speakingRings(call, names));
  it('chat both ways over the data channel', () => chatEveryWay(call, names));
  it('Chromium mutes: Firefox stops receiving its audio, then its video', () => muteAndCamera(call, names, 'crom'));
  it('Firefox mutes: Chromium stops receiving its audio, then its video', () => muteAndCamera(call, names, 'fox'));
  it('the longest chat line arrives whole both ways', () => longChat(call, 'crom', 'fox'));
  it('Chromium shares its screen: Firefox sees it, and it goes when stopped', () => screenShare(call, names, 'crom'));
  it('Firefox shares its screen: Chromium sees it, and it goes when stopped', () => screenShare(call, names, 'fox'));
  it('a file from Firefox reaches Chromium byte for byte', () => fileToAll(call, names, 'fox'));
  it('a file from Chromium reaches Firefox byte for byte', () => fileToAll(call, names, 'crom'));
  it('ICE restarts on both ends at once settle', () => iceRestartGlare(call, 'crom', 'fox'));
  it('Firefox leaves: its tile goes', () => leave(call, names, 'fox'));
  it('Firefox joins with camera and microphone off: nothing arrives until it switches them on', () =>
    joinSwitchedOff(call, names, 'fox', 'cf'));
});

describe('Firefox first, then Chromium', () => {
  const names = ['fox', 'crom'];
  const call = useCall('fc', [{ name: 'fox', browser: 'firefox' }, { name: 'crom', browser: 'chromium' }]);

  it('each sees moving video from and hears the other', () => seeAndHear(call, names));
  it('chat both ways over the data channel', () => chatEveryWay(call, names));
  it('Firefox mutes: Chromium stops receiving its audio, then its video', () => muteAndCamera(call, names, 'fox'));
  it('Chromium mutes: Firefox stops receiving its audio, then its video', () => muteAndCamera(call, names, 'crom'));
  it('Chromium leaves: its tile goes', () => leave(call, names, 'crom'));
  it('Chromium joins again while Firefox has its camera off: no video until it is on', () =>
    rejoinToCameraOff(call, names, 'crom', 'fox', 'fc'));
  it('Firefox closes its window: its tile goes', () => closeWindow(call, names, 'fox'));
});

describe('three people: two Chromium pages and one Firefox', () => {
  // Firefox joins second: it answers one Chromium and offers to the other.
  const names = ['ann', 'fox', 'cid'];
  const call = useCall('three', [
    { name: 'ann', browser: 'chromium' },
    { name: 'fox', browser: 'firefox' },
    { name: 'cid', browser: 'chromium' },
  ]);

  it('each sees moving video from and hears the two others', () => seeAndHear(call, names));
  it('speaking rings light for oneself and the others', () => speakingRings(call, names));
  it('chat from each reaches the two others', () => chatEveryWay(call, names));
  it('Firefox mutes: both Chromium pages stop receiving its audio', () => muteAndCamera(call, names, 'fox'));
  it('a Chromium page mutes: Firefox (and the other) stop receiving its audio', () => muteAndCamera(call, names, 'cid'));
  it('Firefox shares its screen: both Chromium pages see it', () => screenShare(call, names, 'fox'));
  it('a Chromium page shares its screen: Firefox and the other see it', () => screenShare(call, names, 'ann'));
  it('a file from Firefox reaches both Chromium pages', () => fileToAll(call, names, 'fox'));
  it('a file from a Chromium page reaches Firefox and the other', () => fileToAll(call, names, 'cid'));
  it('Firefox leaves: its tile goes on both Chromium pages', () => leave(call, names, 'fox'));
});
