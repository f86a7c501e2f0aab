// A call between two homes whose network can change, for the network-change
// test and benchmark: the server runs in the test's namespace, which also
// routes between the homes (forwarding on), so ann (home A) and bob (home B)
// reach the server and each other directly, without TURN. `flap()` takes
// A's interface down and up; `move()` gives A an address on another subnet.
// Bob's page records the time of every frame of ann's video it shows
// (requestVideoFrameCallback), and `measure()` finds the gap.
//
// Network rule: only namespaces made here (run.sh's and the two homes).

import { closeBrowser, ip, join, launchBrowser, makeHomes, newPage, startServer, until, waitForMedia } from './helpers.mjs';

/** A's subnets: it starts on the first and moves between the two. */
const A_NETS = ['10.78.1', '10.78.3'];
const B_NET = '10.78.2';
/** Largest gap searched for, before the network event (ms). */
const LOOK_BEFORE_MS = 2000;

/**
 * An init script: records each peer connection's state changes with
 * Date.now(), in `window.__pcStates` (for the figures: when the browser
 * itself called the link disconnected).
 */
const pcStateProbe = () => {
  const w = /** @type {any} */ (window);
  w.__pcStates = [];
  const P = RTCPeerConnection;
  class Probed extends P {
    /** @param {RTCConfiguration} [c] */
    constructor(c) {
      super(c);
      this.addEventListener('connectionstatechange', () => w.__pcStates.push([Date.now(), this.connectionState]));
    }
  }
  // @ts-ignore
  window.RTCPeerConnection = Probed;
};

/**
 * Starts the homes, the server and the two browsers, and puts ann and bob
 * in ROOM with video both ways.
 * @param {string} room
 * @param {{flags?: string[], bin?: string}} [opts] more server flags;
 *   another huddle binary (whose web client the pages get)
 */
export async function startNetCall(room, { flags = [], bin } = {}) {
  const homes = makeHomes({ forward: true, nets: [A_NETS[0], B_NET], spare: [[A_NETS[1]]] });
  /** @type {(() => Promise<void> | void)[]} */
  const stops = [() => homes.remove()];
  const stop = async () => {
    for (const f of stops.reverse()) {
      try { await f(); } catch { /* best effort */ }
    }
    stops.length = 0;
  };
  try {
    const server = await startServer(['--listen', '0.0.0.0:0', ...flags], bin ? { bin } : {});
    stops.push(() => server.stop());
    /** @type {Awaited<ReturnType<typeof newPage>>[]} */
    const pages = [];
    for (const [i, name] of ['ann', 'bob'].entries()) {
      // Both reach the server at its address on their own link.
      const base = `http://${homes.homes[i].gateway}:${server.port}`;
      const browser = await launchBrowser({
        executablePath: homes.wrappers[i],
        // Plain http on a LAN address: let this origin use the camera.
        args: [`--unsafely-treat-insecure-origin-as-secure=${base}`],
      });
      stops.push(() => closeBrowser(browser));
      const page = await newPage(browser, { init: pcStateProbe });
      await page.goto(`${base}/r/${room}`);
      await join(page, base, name, room);
      pages.push(page);
    }
    const [ann, bob] = pages;
    await waitForMedia(ann, ['bob']);
    await waitForMedia(bob, ['ann']);
    await bob.evaluate(() => {
      const w = /** @type {any} */ (window);
      const v = /** @type {HTMLVideoElement} */ (document.querySelector('#grid [data-peer="ann"] video'));
      w.__frames = [];
      const tick = () => {
        w.__frames.push(Date.now());
        if (w.__frames.length > 5000) w.__frames.splice(0, 1000);
        v.requestVideoFrameCallback(tick);
      };
      v.requestVideoFrameCallback(tick);
    });
    // The recorder sees ann's frames before anything changes.
    await until(() => bob.evaluate(() => /** @type {any} */ (window).__frames.length >= 30), { what: "ann's frames recorded at bob" });
    const A = homes.homes[0].ns;
    let net = 0;
    return {
      server,
      ann,
      bob,
      stop,
      /** A's current address. */
      get address() {
        return `${A_NETS[net]}.2`;
      },
      /**
       * A's interface goes down for DOWN_MS and comes back (with its default
       * route, as a DHCP client would put it back). Returns the times (ms
       * since the epoch) it went down and came back.
       */
      async flap(downMs = 3000) {
        const down = Date.now();
        ip('-n', A, 'link', 'set', 'eth0', 'down');
        await new Promise((r) => setTimeout(r, downMs));
        ip('-n', A, 'link', 'set', 'eth0', 'up');
        ip('-n', A, 'route', 'replace', 'default', 'via', `${A_NETS[net]}.1`);
        return { down, up: Date.now() };
      },
      /**
       * A's address moves to the other subnet at once: the old one goes,
       * the new one and its default route come. Returns the time of the move
       * as both `down` and `up`.
       */
      async move() {
        const next = 1 - net;
        const at = Date.now();
        ip('-n', A, 'addr', 'del', `${A_NETS[net]}.2/24`, 'dev', 'eth0');
        ip('-n', A, 'addr', 'add', `${A_NETS[next]}.2/24`, 'dev', 'eth0');
        ip('-n', A, 'route', 'replace', 'default', 'via', `${A_NETS[next]}.1`);
        net = next;
        return { down: at, up: Date.now() };
      },
      /**
       * Waits until ann's frames flow again at bob (FRAMES frames after the
       * network came back), then measures: the longest gap between two of
       * ann's frames shown at bob since shortly before DOWN, and how long
       * after UP the first frame after that gap came.
       * @param {{down:number, up:number}} event
       * @param {{timeout?:number, frames?:number}} [opts]
       * @returns {Promise<{gapMs:number, recoverMs:number, disconnectedMs:{ann:number|null, bob:number|null}}>}
       */
      async measure(event, { timeout = 30_000, frames = 15 } = {}) {
        await until(
          () => bob.evaluate(([up, n]) => /** @type {number[]} */ (/** @type {any} */ (window).__frames).filter((t) => t > up).length >= n, [event.up, frames]),
          { timeout, interval: 100, what: `${frames} of ann's frames at bob after the network came back` },
        );
        const times = /** @type {number[]} */ (await bob.evaluate(() => /** @type {any} */ (window).__frames));
        const from = event.down - LOOK_BEFORE_MS;
        if (!times.some((t) => t >= from && t <= event.down)) throw new Error("no frame of ann's at bob just before the change");
        let gapMs = 0;
        let end = event.up;
        for (let i = 1; i < times.length; i += 1) {
          if (times[i] < from) continue;
          const g = times[i] - times[i - 1];
          if (g > gapMs) {
            gapMs = g;
            end = times[i];
          }
        }
        /** When each page's browser first called the link disconnected after DOWN (ms after DOWN). */
        const disconnectedAt = async (/** @type {import('playwright-core').Page} */ page) => {
          const states = /** @type {[number, string][]} */ (await page.evaluate(() => /** @type {any} */ (window).__pcStates));
          const hit = states.find(([t, s]) => t >= event.down && (s === 'disconnected' || s === 'failed'));
          return hit ? hit[0] - event.down : null;
        };
        return {
          gapMs,
          recoverMs: end - event.up,
          disconnectedMs: { ann: await disconnectedAt(ann), bob: await disconnectedAt(bob) },
        };
      },
      /** The server's counters from /metrics (joins, resumes, leaves). */
      async counters() {
        // /metrics answers loopback only; the server listens on every address.
        const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
        /** @param {string} name */
        const sum = (name) => text.split('\n')
          .filter((l) => l.startsWith(name))
          .reduce((n, l) => n + Number(l.split(/\s+/).pop()), 0);
        return { joins: sum('huddle_joins_total'), resumes: sum('huddle_resumes_total'), leaves: sum('huddle_leaves_total') };
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
