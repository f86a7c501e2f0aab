// Benchmark (not a test): join → first remote video frame, against a floor
// measured in the same run (issue 14, item 3). Run inside the loopback-only
// namespace, under the browser lock:
//
//   flock /tmp/huddle-browser.lock sh tests/e2e/run.sh bench [runs]   (default 5)
//
// Each run measures, in this order:
//
// * floor: one page, two bare RTCPeerConnections connected directly (no
//   server; candidates handed over in the page), the same fake camera and
//   microphone with huddle's constraints, acquired and previewed first (as
//   the join page has them). From creating the connections to the first
//   frame of the remote video (requestVideoFrameCallback).
// * 2nd member: page A is in a room; page B, its preview up, clicks Join.
//   From the click (the form's submit) to the first frame of A's tile.
// * 6th member: five `huddle bot`s are in a room (connected to each other);
//   a page, its preview up, clicks Join. From the click to the first frame
//   of each of the five tiles; the figure is the last of the five.
//
// The pages are instrumented (joinProbe below, an init script that wraps
// WebSocket and RTCPeerConnection; the client is unchanged): click, socket
// open, join sent, joined, per member: connection created, offer sent, offer
// received and answer sent (at the other page), answer received, ICE
// connected, DTLS connected (connectionState), track, first frame. The
// breakdown prints the medians of each step.
//
// Prints the medians over runs and the ratios to the floor, and the page's
// weight. Bounded: each step times out after STEP_TIMEOUT, and no new run
// starts after BUDGET_MS.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { killBots, startBot } from './bot-helpers.mjs';
import { HUDDLE_BIN, ROOT, closeBrowser, launchBrowser, median, newPage, startServer } from './helpers.mjs';

const RUNS = Math.max(1, Math.min(20, Number(process.argv[2]) || 5));
const BOTS = 5;
const STEP_TIMEOUT = 30_000;
/** No new run starts after this long (the whole bench stays under ~5 min). */
const BUDGET_MS = 240_000;
const started = Date.now();
// The bots stand in for five browsers: a debug build's are slow to answer
// (it, not the page, would be measured). The server stays HUDDLE_BIN (the
// debug build serves web/ from the source folder).
const RELEASE = path.join(ROOT, 'target/release/huddle');
const BOT_BIN = process.env.HUDDLE_BOT_BIN || (existsSync(RELEASE) ? RELEASE : HUDDLE_BIN);

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

/**
 * Init script for every huddle page: timestamps (epoch ms, fractional, so
 * pages can be compared) of the join flow in `window.__join`.
 */
const joinProbe = () => {
  const w = /** @type {any} */ (window);
  const now = () => performance.timeOrigin + performance.now();
  const P = {
    click: null, wsOpen: null, joinSent: null, joined: null,
    /** @type {Record<string, Record<string, number>>} per member */
    peer: {},
    /** @type {Record<string, number>} first frame per remote tile */
    frames: {},
  };
  w.__join = P;
  /** @type {[number, number][]} main-thread tasks of 50 ms or more: [start, duration] */
  P.longTasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) P.longTasks.push([performance.timeOrigin + e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch { /* no long-task timing */ }
  /** @param {string} name @param {string} key */
  const stamp = (name, key) => {
    const p = (P.peer[name] ||= {});
    if (p[key] === undefined) p[key] = now();
  };
  document.addEventListener('submit', (e) => {
    if (/** @type {HTMLElement} */ (e.target).id === 'join' && P.click === null) P.click = now();
  }, true);

  const WS = w.WebSocket;
  const send = WS.prototype.send;
  WS.prototype.send = function (/** @type {any} */ data) {
    try {
      const m = JSON.parse(data);
      if (m.type === 'join' && P.joinSent === null) P.joinSent = now();
      else if (m.type === 'offer') stamp(m.to, 'offerSent');
      else if (m.type === 'answer') stamp(m.to, 'answerSent');
      else if (m.type === 'candidate' && m.candidate) stamp(m.to, 'candidateSent');
    } catch { /* not ours */ }
    return send.call(this, data);
  };
  w.WebSocket = class extends WS {
    /** @param {any[]} args */
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => { if (P.wsOpen === null) P.wsOpen = now(); });
      this.addEventListener('message', (/** @type {MessageEvent} */ ev) => {
        try {
          const m = JSON.parse(ev.data);
          if (m.type === 'joined' && P.joined === null) P.joined = now();
          else if (m.type === 'peer-joined') stamp(m.name, 'peerJoined');
          else if (m.type === 'offer') stamp(m.from, 'offerRecv');
          else if (m.type === 'answer') stamp(m.from, 'answerRecv');
          else if (m.type === 'candidate' && m.candidate) stamp(m.from, 'candidateRecv');
        } catch { /* not JSON */ }
      });
    }
  };

  const PC = w.RTCPeerConnection;
  w.RTCPeerConnection = class extends PC {
    /** @param {any[]} args */
    constructor(...args) {
      super(...args);
      /** @type {Record<string, number>} */
      const t = { created: now() };
      this.__t = t;
      const once = (/** @type {string} */ k) => { if (t[k] === undefined) t[k] = now(); };
      this.addEventListener('icecandidate', (/** @type {any} */ e) => once(e.candidate ? 'firstCandidate' : 'gathered'));
      this.addEventListener('iceconnectionstatechange', () => {
        if (this.iceConnectionState === 'connected' || this.iceConnectionState === 'completed') once('ice');
      });
      this.addEventListener('connectionstatechange', () => { if (this.connectionState === 'connected') once('connected'); });
      this.addEventListener('track', (/** @type {any} */ e) => { if (e.track.kind === 'video') once('track'); });
    }
  };

  new MutationObserver(() => {
    for (const v of document.querySelectorAll('#grid [data-peer]:not([data-self]) video')) {
      const video = /** @type {any} */ (v);
      if (video.__probed) continue;
      video.__probed = true;
      const name = video.closest('[data-peer]').dataset.peer;
      const mark = () => { if (P.frames[name] === undefined) P.frames[name] = now(); };
      if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(mark);
      else video.addEventListener('resize', mark, { once: true });
    }
  }).observe(document, { subtree: true, childList: true });
};

/**
 * The page's probe, with each member's connection timestamps merged in.
 * @param {import('playwright-core').Page} page
 */
function probe(page) {
  return page.evaluate(() => {
    const w = /** @type {any} */ (window);
    const P = structuredClone(w.__join);
    for (const [name, m] of w.huddle.room.members) Object.assign((P.peer[name] ||= {}), m.link.pc.__t || {});
    return P;
  });
}

/**
 * The floor, in a page of the server's origin with no client on it.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 */
async function floor(browser, url) {
  const page = await newPage(browser);
  try {
    // A blank page of the server's origin (127.0.0.1: a secure context).
    await page.route(`${url}/floor`, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>floor</title><body></body>' }));
    await page.goto(`${url}/floor`);
    return await bounded(page.evaluate(async () => {
      const now = () => performance.now();
      // huddle's constraints (web/js/media.js).
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24, max: 30 } },
      });
      const preview = document.createElement('video');
      preview.muted = true;
      preview.autoplay = true;
      preview.srcObject = stream;
      document.body.append(preview);
      await new Promise((r) => preview.requestVideoFrameCallback(r));
      const remote = document.createElement('video');
      remote.muted = true;
      remote.autoplay = true;
      document.body.append(remote);

      /** @type {Record<string, number>} */
      const t = {};
      const once = (/** @type {string} */ k) => { if (t[k] === undefined) t[k] = now(); };
      const t0 = now();
      const a = new RTCPeerConnection();
      const b = new RTCPeerConnection();
      a.onicecandidate = (e) => { b.addIceCandidate(e.candidate ?? undefined).catch(() => {}); };
      b.onicecandidate = (e) => { a.addIceCandidate(e.candidate ?? undefined).catch(() => {}); };
      b.oniceconnectionstatechange = () => {
        if (b.iceConnectionState === 'connected' || b.iceConnectionState === 'completed') once('ice');
      };
      b.onconnectionstatechange = () => { if (b.connectionState === 'connected') once('connected'); };
      const frame = new Promise((resolve) => {
        b.ontrack = ({ track, streams }) => {
          if (track.kind !== 'video') return;
          once('track');
          remote.srcObject = streams[0] || new MediaStream([track]);
          remote.requestVideoFrameCallback(() => { once('frame'); resolve(undefined); });
          remote.play().catch(() => {});
        };
      });
      for (const track of stream.getTracks()) a.addTrack(track, stream);
      await a.setLocalDescription();
      once('offer');
      await b.setRemoteDescription(/** @type {RTCSessionDescription} */ (a.localDescription));
      await b.setLocalDescription();
      once('answer');
      await a.setRemoteDescription(/** @type {RTCSessionDescription} */ (b.localDescription));
      once('answered');
      await frame;
      const rel = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v - t0]));
      a.close();
      b.close();
      for (const tr of stream.getTracks()) tr.stop();
      return rel;
    }), 'the floor');
  } finally {
    await page.context().close();
  }
}

/**
 * Opens the join page of ROOM, waits for the camera preview, and types NAME.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {string} room
 * @param {string} name
 */
async function joinPage(browser, url, room, name) {
  const page = await newPage(browser, { init: joinProbe });
  await page.goto(`${url}/r/${room}`, { waitUntil: 'load' });
  // The preview is up: a frame of the own camera was shown.
  await page.waitForFunction(() => /** @type {any} */ (window).huddle?.media.result !== null);
  await page.evaluate(() => new Promise((r) => /** @type {any} */ (document.querySelector('#preview')).requestVideoFrameCallback(r)));
  await page.fill('input[name=name]', name);
  return page;
}

/**
 * Waits until PAGE saw a first frame from each of NAMES; returns its probe.
 * @param {import('playwright-core').Page} page
 * @param {string[]} names
 */
async function firstFrames(page, names) {
  await bounded(page.waitForFunction(
    (ns) => ns.every((n) => /** @type {any} */ (window).__join.frames[n] !== undefined),
    names,
    { timeout: STEP_TIMEOUT, polling: 20 },
  ), `first frames from ${names.join(', ')}`);
  return probe(page);
}

/** Steps of the breakdown: [label, (probe, peer, other page's probe of us) => ms since click]. */
const STEPS = /** @type {const} */ ([
  ['join sent', (/** @type {any} */ P) => P.joinSent],
  ['joined', (/** @type {any} */ P) => P.joined],
  ['connection created', (/** @type {any} */ P, /** @type {any} */ p) => p.created],
  ['offer sent', (/** @type {any} */ P, /** @type {any} */ p) => p.offerSent],
  ['offer at the member', (/** @type {any} */ P, /** @type {any} */ p, /** @type {any} */ o) => o?.offerRecv],
  ['answer sent by it', (/** @type {any} */ P, /** @type {any} */ p, /** @type {any} */ o) => o?.answerSent],
  ['answer received', (/** @type {any} */ P, /** @type {any} */ p) => p.answerRecv],
  ['ICE connected', (/** @type {any} */ P, /** @type {any} */ p) => p.ice],
  ['DTLS connected', (/** @type {any} */ P, /** @type {any} */ p) => p.connected],
  ['video track', (/** @type {any} */ P, /** @type {any} */ p) => p.track],
  ['first frame', (/** @type {any} */ P, /** @type {any} */ p, /** @type {any} */ o, /** @type {string} */ name) => P.frames[name]],
]);

/**
 * @param {any} P the joiner's probe
 * @param {string} name a member
 * @param {any} [other] that member's probe entry for the joiner
 * @returns {Record<string, number>} ms since the click, per step
 */
function breakdown(P, name, other) {
  /** @type {Record<string, number>} */
  const out = {};
  const p = P.peer[name] || {};
  for (const [label, pick] of STEPS) {
    const v = pick(P, p, other, name);
    if (typeof v === 'number') out[label] = v - P.click;
  }
  out['socket open (before click if < 0)'] = P.wsOpen - P.click;
  // Main-thread time in long tasks from the click to this member's first frame.
  const end = P.frames[name] ?? Infinity;
  out['long tasks before it (ms busy)'] = P.longTasks
    .filter(([t, d]) => t + d > P.click && t < end)
    .reduce((sum, [t, d]) => sum + Math.min(t + d, end) - Math.max(t, P.click), 0);
  return out;
}

const server = await startServer();
const browser = await launchBrowser();
/** @type {{floor:number[], second:number[], sixth:number[], sixthFirst:number[]}} */
const results = { floor: [], second: [], sixth: [], sixthFirst: [] };
/** @type {{floor:Record<string, number>[], second:Record<string, number>[], sixth:Record<string, number>[]}} */
const steps = { floor: [], second: [], sixth: [] };
const weight = { files: 0, bytes: 0, gzip: 0, list: /** @type {string[]} */ ([]) };
let runs = 0;

try {
  // The page's weight, from one load.
  {
    const page = await newPage(browser);
    const seen = new Set();
    /** @type {Promise<void>[]} */
    const bodies = [];
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
    await page.goto(`${server.url}/r/weigh`, { waitUntil: 'load' });
    await page.waitForFunction(() => /** @type {any} */ (window).huddle?.media.result !== null);
    await Promise.all(bodies);
    await page.context().close();
  }

  for (let run = 1; run <= RUNS && Date.now() - started < BUDGET_MS; run += 1) {
    // The floor.
    const f = await floor(browser, server.url);
    results.floor.push(f.frame);
    steps.floor.push(f);

    // The 2nd member: B joins A.
    {
      const room = `second-${run}`;
      const a = await joinPage(browser, server.url, room, 'a');
      await a.click('form#join button[type=submit]');
      await a.waitForSelector('body[data-view=call]');
      const b = await joinPage(browser, server.url, room, 'b');
      await b.click('form#join button[type=submit]');
      const P = await firstFrames(b, ['a']);
      const A = await probe(a);
      results.second.push(P.frames.a - P.click);
      const row = breakdown(P, 'a', A.peer.b);
      row['member: long tasks (ms busy)'] = A.longTasks
        .filter(([t, d]) => t + d > P.click && t < P.frames.a)
        .reduce((sum, [t, d]) => sum + Math.min(t + d, P.frames.a) - Math.max(t, P.click), 0);
      steps.second.push(row);
      await b.context().close();
      await a.context().close();
    }

    // The 6th member: a page joins five bots.
    {
      const room = `sixth-${run}`;
      const names = Array.from({ length: BOTS }, (_, i) => `bot${i + 1}`);
      const bots = [];
      try {
        for (const name of names) {
          const bot = startBot(['--server', server.url, '--room', room, '--name', name], { bin: BOT_BIN });
          bots.push(bot);
          await bounded(waitFor(() => bot.lines.some((l) => l.type === 'joined')), `${name} to join`)
            .catch((e) => { throw new Error(`${e.message}\n${bot.stderr()}`); });
        }
        // The bots' mesh is up: each is connected to the four others.
        await bounded(waitFor(() => bots.every((b) => b.lines.filter((l) => l.type === 'first-frame').length >= BOTS - 1)), 'the bots\' mesh');
        const page = await joinPage(browser, server.url, room, 'web');
        await page.click('form#join button[type=submit]');
        const P = await firstFrames(page, names);
        const times = names.map((n) => P.frames[n] - P.click);
        results.sixth.push(Math.max(...times));
        results.sixthFirst.push(Math.min(...times));
        // Per step: when the last of the five got there.
        /** @type {Record<string, number>} */
        const last = {};
        for (const n of names) {
          for (const [k, v] of Object.entries(breakdown(P, n))) last[k] = Math.max(last[k] ?? -Infinity, v);
        }
        steps.sixth.push(last);
        await page.context().close();
      } finally {
        await Promise.all(bots.map((b) => b.stop()));
      }
    }
    runs = run;
    const last = (/** @type {number[]} */ xs) => xs.at(-1)?.toFixed(0);
    console.log(`run ${run}: floor ${last(results.floor)} ms, 2nd member ${last(results.second)} ms, 6th member ${last(results.sixth)} ms (first of five ${last(results.sixthFirst)} ms)`);
  }
} finally {
  killBots();
  await closeBrowser(browser);
  await server.stop();
}

/**
 * Polls FN every 20 ms until it is true.
 * @param {() => boolean} fn
 */
function waitFor(fn) {
  return new Promise((resolve) => {
    const tick = () => (fn() ? resolve(undefined) : setTimeout(tick, 20));
    tick();
  });
}

const fmt = (/** @type {number[]} */ xs) =>
  `median ${median(xs).toFixed(0)} ms  (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
const fl = median(results.floor);
console.log('');
console.log(`Join → first remote video frame, ${runs} runs (medians; ratios of medians to the floor's):`);
console.log(`  floor (two bare RTCPeerConnections, one page):  ${fmt(results.floor)}`);
console.log(`  2nd member (page joins page):                   ${fmt(results.second)}   ÷ floor ${(median(results.second) / fl).toFixed(2)}  (target ≤ 1.5)`);
console.log(`  6th member, last of five bots' first frames:    ${fmt(results.sixth)}   ÷ floor ${(median(results.sixth) / fl).toFixed(2)}  (target ≤ 2.5)`);
console.log(`  6th member, first of the five:                  ${fmt(results.sixthFirst)}`);

/**
 * Prints the median of each step.
 * @param {string} title
 * @param {Record<string, number>[]} rows
 */
function printSteps(title, rows) {
  console.log('');
  console.log(title);
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  for (const k of keys) {
    const xs = rows.map((r) => r[k]).filter((v) => typeof v === 'number' && Number.isFinite(v));
    if (xs.length) console.log(`  ${k.padEnd(36)} ${median(xs).toFixed(0).padStart(6)} ms`);
  }
}
printSteps('Floor, ms since creating the connections:', steps.floor);
printSteps('2nd member, ms since the click (median per step):', steps.second);
printSteps('6th member, ms since the click until the last of the five got there:', steps.sixth);

console.log('');
console.log(`Page weight: ${(weight.bytes / 1024).toFixed(1)} KiB in ${weight.files} files (${(weight.gzip / 1024).toFixed(1)} KiB if gzipped)`);
for (const l of weight.list.sort()) console.log(`  ${l}`);
console.log(`server ${path.relative(ROOT, HUDDLE_BIN)}, bots ${path.relative(ROOT, BOT_BIN)}; bench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
