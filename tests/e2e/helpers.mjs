// Shared helpers for the browser tests: a huddle server per test file, a
// headless Chromium with a fake camera and microphone, a TCP proxy that can
// drop connections without a close frame, and polling with bounded waits.
//
// Everything talks to 127.0.0.1 only; run.sh runs the tests in a network
// namespace that has nothing but loopback.

import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const HUDDLE_BIN = path.resolve(ROOT, process.env.HUDDLE_BIN || 'target/debug/huddle');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(ROOT, 'target/e2e-artifacts');

/** Generous on a busy 2-core machine, but always bounded. */
export const T = { server: 20_000, join: 30_000, media: 45_000, short: 10_000 };

export const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // Several pages share 2 cores: keep hidden ones from being throttled.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** Servers started and not yet exited: killed if the test process exits first. */
const running = new Set();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/**
 * Starts `huddle --listen 127.0.0.1:0 …` (unless EXTRA has its own --listen)
 * and waits for its `listening on http(s)://…` line.
 * @param {string[]} [extra] more flags
 * @param {{bin?: string}} [opts] bin: another huddle binary (default HUDDLE_BIN)
 * @returns {Promise<{url:string, port:number, pid:number, stop:() => Promise<void>, log:() => string}>}
 */
export async function startServer(extra = [], { bin = HUDDLE_BIN } = {}) {
  const listen = extra.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  // Every browser of a test connects from the same address; several pages
  // with keep-alive connections can pass the default per-IP cap (100).
  const perIp = extra.includes('--max-connections-per-ip') ? [] : ['--max-connections-per-ip', '0'];
  const proc = spawn(bin, [...listen, ...perIp, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let stderr = '';
  let stdout = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`huddle did not start in time:\n${stderr}`)), T.server);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${e.message}`));
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`huddle exited (${code}) before listening:\n${stderr}`));
    });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
  });
  const port = Number(new URL(url).port);
  // Printed right after the listening line, when the TURN server runs.
  await new Promise((r) => setTimeout(r, 50));
  const turn = /TURN server on \S+:(\d+)/.exec(stdout);
  const turnPort = turn ? Number(turn[1]) : 0;
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return { url, port, turnPort, pid: /** @type {number} */ (proc.pid), stop, log: () => stderr };
}

/**
 * @param {{args?: string[], executablePath?: string}} [opts] more Chromium
 *   flags; another executable (e.g. a wrapper that enters a namespace)
 * @returns {Promise<import('playwright-core').Browser>}
 */
export function launchBrowser(opts = {}) {
  return chromium.launch({
    executablePath: opts.executablePath || CHROMIUM,
    args: [...CHROMIUM_ARGS, ...(opts.args || [])],
    timeout: T.server,
  });
}

/**
 * A new browser context (own storage) and page. Records page errors and CSP
 * violations on `page.problems`.
 * @param {import('playwright-core').Browser} browser
 * @param {{viewport?:{width:number, height:number}, init?:string|Function, colorScheme?:'light'|'dark', locale?:string}} [opts]
 *   locale: the browser's language (navigator.languages, Accept-Language), e.g. `ru-RU`
 */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: opts.viewport || { width: 1280, height: 800 },
    colorScheme: opts.colorScheme || 'light',
    ...(opts.locale ? { locale: opts.locale } : {}),
  });
  await context.addInitScript(() => {
    // @ts-ignore
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      // @ts-ignore
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  if (opts.init) await context.addInitScript(opts.init);
  const page = await context.newPage();
  page.setDefaultTimeout(T.join);
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  if (process.env.E2E_CONSOLE) page.on('console', (m) => console.log(`[page] ${m.type()}: ${m.text()}`));
  return Object.assign(page, { problems });
}

/**
 * Opens the join page and joins ROOM as NAME; resolves once the call view shows.
 * @param {import('playwright-core').Page} page
 * @param {string} base server URL
 * @param {string} name
 * @param {string} room
 */
export async function join(page, base, name, room) {
  if (!page.url().startsWith(base)) await page.goto(`${base}/`);
  await page.waitForFunction(() => 'huddle' in window);
  await page.fill('form#join input[name=name]', name);
  await page.fill('form#join input[name=room]', room);
  await page.click('form#join button[type=submit]');
  await page.waitForSelector('body[data-view=call] [data-self] video', { timeout: T.join });
}

/**
 * A CSS attribute selector for a tile of NAME (names may hold quotes, < >, …).
 * @param {string} name
 */
export function tileOf(name) {
  return `#grid [data-peer="${name.replace(/["\\]/g, '\\$&')}"]`;
}

/**
 * Names of the remote tiles on PAGE.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
export function remoteTiles(page) {
  return page.$$eval('#grid [data-peer]:not([data-self])', (els) =>
    els.map((e) => /** @type {HTMLElement} */ (e).dataset.peer || ''),
  );
}

/**
 * Per-member inbound media counters (see PeerLink.stats in web/js/peer.js).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, any>>}
 */
export function stats(page) {
  return page.evaluate(() => /** @type {any} */ (window).huddle.room.stats());
}

/**
 * Polls FN until it returns a truthy value; throws after TIMEOUT ms.
 * @template T
 * @param {() => Promise<T> | T} fn
 * @param {{timeout?:number, interval?:number, what?:string | (() => string)}} [opts]
 *   what: what is awaited, for the error (a function: asked when it times out)
 * @returns {Promise<T>}
 */
export async function until(fn, { timeout = T.media, interval = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const w = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeout} ms waiting for ${w} (last: ${String(last)})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Waits until PAGE shows remote tiles for exactly NAMES and decodes video
 * frames and receives audio from each of them.
 * @param {import('playwright-core').Page} page
 * @param {string[]} names
 */
export async function waitForMedia(page, names) {
  await until(
    async () => {
      const tiles = (await remoteTiles(page)).sort();
      if (JSON.stringify(tiles) !== JSON.stringify([...names].sort())) return false;
      const s = await stats(page);
      for (const n of names) {
        const m = s[n];
        if (!m || m.video.framesDecoded <= 0 || m.audio.packetsReceived <= 0) return false;
        const w = await page.$eval(`${tileOf(n)} video`, (v) => /** @type {HTMLVideoElement} */ (v).videoWidth);
        if (!(w > 0)) return false;
      }
      return true;
    },
    { what: `media from ${names.join(', ')}` },
  );
}

/**
 * Waits until the counter picked by PICK (from stats of member NAME on
 * PAGE) grows by at least BY.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {(m:any) => number} pick
 * @param {number} by
 */
export async function waitForGrowth(page, name, pick, by, timeout = T.media) {
  const first = pick((await stats(page))[name]);
  await until(async () => pick((await stats(page))[name]) >= first + by, {
    timeout,
    what: `${name}'s counter to grow by ${by} from ${first}`,
  });
}

/**
 * Waits until the counter picked by PICK (member NAME on PAGE) stays flat:
 * at most SLACK growth over WINDOW ms. Returns the growth seen.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {(m:any) => number} pick
 */
export async function waitForStall(page, name, pick, { window = 1500, slack = 0, timeout = T.media } = {}) {
  let growth = Infinity;
  await until(
    async () => {
      const a = pick((await stats(page))[name]);
      await new Promise((r) => setTimeout(r, window));
      const b = pick((await stats(page))[name]);
      growth = b - a;
      return growth <= slack;
    },
    { timeout, interval: 0, what: () => `${name}'s counter to stop growing (last growth ${growth})` },
  );
  return growth;
}

/**
 * A TCP proxy on 127.0.0.1:0 in front of TARGET_PORT. `drop()` destroys
 * every proxied connection at once (no WebSocket close frame: the server
 * sees the connection lost, the browser an abnormal close); `pause(true)`
 * refuses new connections until `pause(false)`.
 * @param {number} targetPort
 * @param {number} [listenPort] where to listen (default: any free port)
 */
export async function startProxy(targetPort, listenPort = 0) {
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  let paused = false;
  let stalled = false;
  /** @type {(() => void)[]} closes held back while stalled */
  let held = [];
  let accepted = 0;
  const server = net.createServer((client) => {
    if (paused || stalled) {
      client.destroy();
      return;
    }
    accepted += 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      if (stalled) {
        held.push(done);
        return;
      }
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(listenPort, '127.0.0.1', () => r(undefined)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    /** Destroys every open connection (RST, no close frame). */
    drop() {
      for (const s of sockets) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
      sockets.clear();
    },
    /** @param {boolean} on */
    pause(on) {
      paused = on;
    },
    /**
     * A network outage: while on, nothing moves in either direction and new
     * connections fail; nothing is closed. When it ends, what was held
     * (data, closes) goes through, as when a network comes back.
     * @param {boolean} on
     */
    stall(on) {
      stalled = on;
      for (const s of sockets) {
        if (on) s.pause();
        else s.resume();
      }
      if (!on) {
        const h = held;
        held = [];
        for (const f of h) f();
      }
    },
    close() {
      this.drop();
      return new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

export function artifactsDir() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}

/**
 * Closes pages' contexts and the browser without hanging the test run.
 * @param {import('playwright-core').Browser | undefined} browser
 */
export async function closeBrowser(browser) {
  if (!browser) return;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  await Promise.race([browser.close(), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
  clearTimeout(timer);
}

/**
 * Starts a huddle server and a browser before the tests of the enclosing
 * `describe`, and stops both after them.
 * @param {string[]} [extra] more server flags
 * @returns {{server: Awaited<ReturnType<typeof startServer>>, browser: import('playwright-core').Browser}}
 */
export function useServerAndBrowser(extra = []) {
  const env = /** @type {any} */ ({ server: null, browser: null });
  before(async () => {
    env.server = await startServer(extra);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await closeBrowser(env.browser);
    await env.server?.stop();
  });
  return env;
}

/**
 * A server with a TCP proxy in front of it. The page opened through the
 * proxy has the proxy's origin, which the server must be told about
 * (`--allowed-origin`): it never trusts the request's Host.
 * @param {string[]} flags more server flags
 */
export async function startProxiedServer(flags = []) {
  const port = await freePort();
  const server = await startServer([...flags, '--allowed-origin', `http://127.0.0.1:${port}`]);
  const proxy = await startProxy(server.port, port);
  return { server, proxy };
}

/** A free TCP port on 127.0.0.1 (closed again; UDP on it is rarely taken). */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', () => r(undefined)));
  const port = /** @type {net.AddressInfo} */ (srv.address()).port;
  await new Promise((r) => srv.close(() => r(undefined)));
  return port;
}

/** The relay ports of the coturn that startCoturn() runs. */
export const COTURN_RELAY_PORTS = [40000, 40999];

/**
 * Starts Debian's coturn on 127.0.0.1 with TURN REST credentials checked
 * against SECRET (use-auth-secret), and waits until it listens.
 * @param {string} secret
 */
export async function startCoturn(secret) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-coturn-')); // pid file and user db
  const proc = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    `--min-port=${COTURN_RELAY_PORTS[0]}`, `--max-port=${COTURN_RELAY_PORTS[1]}`,
    '--use-auth-secret', `--static-auth-secret=${secret}`,
    '--realm=huddle.test', '--no-tls', '--no-dtls', '--allow-loopback-peers', '--no-cli',
    '--fingerprint', '--log-file=stdout',
    `--pidfile=${path.join(dir, 'turn.pid')}`, `--userdb=${path.join(dir, 'turn.db')}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let log = '';
  const keep = (/** @type {Buffer} */ d) => { log = (log + d).slice(-20_000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const stop = () => {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Ready once it answers on its TCP port.
    await Promise.race([
      new Promise((_, reject) => proc.on('error', (e) => reject(new Error(`cannot start coturn: ${e.message}`)))),
      until(() => new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
      }), { timeout: T.server, what: 'coturn listening' }),
    ]);
  } catch (e) {
    stop();
    throw e;
  }
  return { port, pid: /** @type {number} */ (proc.pid), log: () => log, stop };
}

/**
 * An init script for newPage() (benchmarks): records in `window.__bench`
 * when the join form is submitted (t0) and when the first remote video
 * frame is shown (t1).
 */
export const firstFrameProbe = () => {
  const w = /** @type {any} */ (window);
  w.__bench = { t0: null, t1: null };
  const mark = () => {
    if (w.__bench.t0 !== null && w.__bench.t1 === null) w.__bench.t1 = performance.now();
  };
  document.addEventListener('submit', (e) => {
    if (/** @type {HTMLElement} */ (e.target).id === 'join') w.__bench.t0 = performance.now();
  }, true);
  new MutationObserver(() => {
    for (const v of document.querySelectorAll('#grid [data-peer]:not([data-self]) video')) {
      if (v.__probed) continue;
      v.__probed = true;
      v.addEventListener('resize', mark, { once: true });
      if ('requestVideoFrameCallback' in v) v.requestVideoFrameCallback(mark);
    }
  }).observe(document, { subtree: true, childList: true });
};

/** @param {number[]} xs */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs `ip ARGS…` and returns its output (throws with its stderr on failure).
 * @param {string[]} args
 */
export function ip(...args) {
  return execFileSync('ip', args, { stdio: 'pipe' }).toString();
}

/** How many times makeHomes() ran in this process. */
let homesMade = 0;

/**
 * Network namespaces for a "homes and one server" setup: the test's own
 * namespace plays the server (and the router), each home gets a veth link
 * to it (`eth0` inside, HOST outside), the address NET.2/24 (the test's side
 * is NET.1) and a default route through it. With FORWARD the test's
 * namespace routes between the homes, so they reach each other directly;
 * without, they reach the server's addresses but not each other. SPARE
 * subnets are added on every home's outer end too (SPARE.1/24), for a home
 * to move to. Chromium wrappers run the browser inside a home
 * (`ip netns exec NS chromium`). Needs root (run.sh's namespace is fine:
 * the forwarding switch is the namespace's own).
 * @param {{forward?:boolean, nets?:string[], spare?:string[][]}} [opts]
 *   nets: each home's /24 prefix (default 10.77.1, 10.77.2); spare: per
 *   home, prefixes it may move to
 */
export function makeHomes({ forward = false, nets = ['10.77.1', '10.77.2'], spare = [] } = {}) {
  // A new tag each time: a namespace (and its veth) lives on while a
  // process that was in it (a browser's child) is still exiting.
  homesMade += 1;
  const tag = `${process.pid % 10000}${homesMade > 1 ? homesMade : ''}`;
  const homes = nets.map((net, i) => {
    const letter = String.fromCharCode(97 + i);
    return { ns: `hud-${letter}-${tag}`, host: `hv${letter}${tag}`, net, addr: `${net}.2`, gateway: `${net}.1` };
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-ns-'));
  const remove = () => {
    for (const h of homes) {
      try { ip('link', 'del', h.host); } catch { /* already gone */ }
      try { ip('netns', 'del', h.ns); } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    writeFileSync('/proc/sys/net/ipv4/ip_forward', forward ? '1' : '0');
    for (const [i, h] of homes.entries()) {
      ip('netns', 'add', h.ns);
      ip('link', 'add', h.host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      ip('addr', 'add', `${h.net}.1/24`, 'dev', h.host);
      for (const s of spare[i] || []) ip('addr', 'add', `${s}.1/24`, 'dev', h.host);
      ip('link', 'set', h.host, 'up');
      ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      ip('-n', h.ns, 'addr', 'add', `${h.net}.2/24`, 'dev', 'eth0');
      ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', h.ns, 'route', 'add', 'default', 'via', `${h.net}.1`);
    }
  } catch (e) {
    remove();
    throw e;
  }
  const wrappers = homes.map((h) => {
    const file = path.join(dir, `chromium-${h.ns}`);
    writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${h.ns} ${CHROMIUM} "$@"\n`);
    chmodSync(file, 0o755);
    return file;
  });
  return { homes, wrappers, remove };
}
