// Firefox for the browser tests: Debian's firefox-esr driven through
// geckodriver (crates.io) with selenium-webdriver, headless, with a fake
// camera and microphone, in a fresh profile.
//
// `openFirefox()` gives a page object with the part of Playwright's Page
// that helpers.mjs and the tests use (goto, evaluate, fill, click, press,
// waitForSelector, $eval, $$eval, textContent, getAttribute, problems), so
// join(), stats(), waitForMedia(), waitForGrowth() … work on it unchanged and
// a test reads the same whichever browser a page is in.
//
// One page is one geckodriver and one Firefox (a WebDriver session has one
// current window; a page of its own keeps two pages from racing for it).
// geckodriver runs in a process group of its own with TMPDIR pointed at a
// fresh folder (the profile goes there): close() ends the session, kills the
// group and removes the folder, and so does the process' exit if a test
// failed before it could. Every WebDriver call has a deadline.
//
// Everything listens on 127.0.0.1 only (geckodriver, Marionette, the BiDi
// socket); run.sh runs the tests in a namespace that has nothing but lo.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import firefox from 'selenium-webdriver/firefox.js';
import http from 'selenium-webdriver/http/index.js';
import { Key } from 'selenium-webdriver/lib/input.js';
import { freePort, until, T } from './helpers.mjs';

export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

/** geckodriver: $GECKODRIVER, else on PATH, else cargo's bin folder. */
export function geckodriverPath() {
  if (process.env.GECKODRIVER) return process.env.GECKODRIVER;
  for (const dir of (process.env.PATH || '').split(':')) {
    if (dir && existsSync(path.join(dir, 'geckodriver'))) return path.join(dir, 'geckodriver');
  }
  const cargo = path.join(process.env.CARGO_HOME || path.join(os.homedir(), '.cargo'), 'bin', 'geckodriver');
  return cargo;
}

/**
 * Prefs for a call in a loopback-only namespace (see shared PITFALLS: without
 * granted camera and microphone Firefox gathers no ICE candidates at all).
 */
export const FIREFOX_PREFS = {
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.loopback': true,
  'media.autoplay.default': 0,
  // No sound device here (no /dev/snd, no sound server): without a stand-in
  // audio backend an AudioContext never leaves "suspended" (resume() never
  // settles), so Web Audio (the microphone level meter) would hear nothing.
  'media.cubeb.force_mock_context': true,
  // Nothing to reach outside: do not try.
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'extensions.update.enabled': false,
  // Several browsers share 2 cores: no throttling of a page in the background.
  'dom.min_background_timeout_value': 4,
  'dom.timeout.enable_budget_timer_throttling': false,
};

/** geckodrivers started and not yet ended, with their folders: on exit the
 * groups are killed and the folders removed. */
const running = new Map();
process.on('exit', () => {
  for (const [p, dir] of running) {
    killGroup(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
// node --test ends a file that hangs past its timeout with SIGTERM, which
// by default exits without 'exit' handlers: exit properly, so they run (these
// and helpers.mjs' for the servers).
for (const sig of /** @type {const} */ (['SIGTERM', 'SIGINT', 'SIGHUP'])) {
  process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
}

/**
 * @param {import('node:child_process').ChildProcess} proc
 * @param {NodeJS.Signals} signal
 */
function killGroup(proc, signal) {
  try {
    if (proc.pid) process.kill(-proc.pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * PROMISE, or an error after MS.
 * @template V
 * @param {Promise<V>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<V>}
 */
function bounded(promise, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`firefox: ${what} took more than ${ms} ms`)), ms);
  });
  return /** @type {Promise<V>} */ (Promise.race([promise, late]).finally(() => clearTimeout(timer)));
}

/** A CSS selector as a JS string literal for a script. */
const lit = (/** @type {unknown} */ v) => JSON.stringify(v);

/** Playwright's key names → WebDriver keys. */
const KEYS = /** @type {Record<string, string>} */ ({
  Enter: Key.ENTER, Escape: Key.ESCAPE, Tab: Key.TAB, Backspace: Key.BACK_SPACE, Space: ' ',
});

/**
 * Installed before any page script (a BiDi preload script): CSP violations
 * go to `window.__csp`, as newPage() in helpers.mjs does for Chromium.
 */
const PRELOAD = `() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
  });
}`;

/**
 * Starts geckodriver and Firefox and opens one page.
 * @param {{prefs?: Record<string, unknown>, viewport?: {width:number, height:number}, init?: string | Function}} [opts]
 *   more prefs; the viewport (1280×800); what to run before any page script,
 *   as newPage()'s `init` (a function without closures, or a script's text)
 */
export async function openFirefox(opts = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-firefox-'));
  const port = await freePort();
  const wsPort = await freePort();
  const driverBin = geckodriverPath();
  const proc = spawn(driverBin, [
    '--host', '127.0.0.1', '--port', String(port), '--websocket-port', String(wsPort),
    '--binary', FIREFOX, '--log', process.env.E2E_GECKO_LOG || 'warn',
  ], {
    detached: true, // its own process group: Firefox and its content processes go with it
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: dir, MOZ_HEADLESS: '1' },
  });
  running.set(proc, dir);
  let log = '';
  const keep = (/** @type {Buffer} */ d) => { log = (log + d).slice(-50_000); };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  let spawnError = /** @type {Error | null} */ (null);
  proc.once('error', (e) => { spawnError = e; });

  /** @type {import('selenium-webdriver').WebDriver | null} */
  let driver = null;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      if (driver) await bounded(driver.quit(), 10_000, 'quit').catch(() => {});
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        killGroup(proc, 'SIGTERM');
        const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), 3000);
        await bounded(exited, 5000, 'geckodriver to exit').catch(() => killGroup(proc, 'SIGKILL'));
        clearTimeout(timer);
      }
      // Firefox's content processes may outlive geckodriver by a moment.
      killGroup(proc, 'SIGKILL');
      running.delete(proc);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    const base = `http://127.0.0.1:${port}`;
    await until(
      async () => {
        if (spawnError) throw new Error(`cannot start ${driverBin}: ${spawnError.message}`);
        if (proc.exitCode !== null) throw new Error(`geckodriver exited (${proc.exitCode}):\n${log}`);
        const r = await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) });
        return r.ok;
      },
      { timeout: T.server, interval: 100, what: `geckodriver on ${base}` },
    ).catch((e) => {
      throw spawnError ? new Error(`cannot start ${driverBin}: ${spawnError.message}`) : e;
    });

    const options = new firefox.Options().setBinary(FIREFOX).addArguments('-headless').enableBidi();
    for (const [k, v] of Object.entries({ ...FIREFOX_PREFS, ...(opts.prefs || {}) })) {
      options.setPreference(k, /** @type {any} */ (v));
    }
    options.set('pageLoadStrategy', 'normal');
    const executor = new http.Executor(new http.HttpClient(base));
    driver = await bounded(
      /** @type {Promise<import('selenium-webdriver').WebDriver>} */ (/** @type {unknown} */ (firefox.Driver.createSession(options, executor))),
      T.join,
      'starting a session',
    );
    await bounded(driver.manage().setTimeouts({ script: T.short, pageLoad: T.join, implicit: 0 }), T.join, 'timeouts');
    const size = opts.viewport || { width: 1280, height: 800 };
    // The size asked for is the viewport's, as in Playwright: the window
    // gets what the browser's frame takes on top.
    await bounded(driver.manage().window().setRect({ x: 0, y: 0, ...size }), T.join, 'window size');
    const frame = /** @type {number[]} */ (await bounded(
      driver.executeScript('return [outerWidth - innerWidth, outerHeight - innerHeight];'), T.join, 'window frame',
    ));
    if (frame[0] || frame[1]) {
      await bounded(
        driver.manage().window().setRect({ width: size.width + frame[0], height: size.height + frame[1] }), T.join, 'window size',
      );
    }

    /** @type {string[]} */
    const problems = [];
    const bidi = await bounded(driver.getBidi(), T.join, 'BiDi connection');
    const context = await bounded(driver.getWindowHandle(), T.join, 'window handle');
    bidi.on('log.entryAdded', (/** @type {any} */ e) => {
      if (e?.type === 'javascript' && e.level === 'error') problems.push(`pageerror: ${e.text}`);
      if (process.env.E2E_CONSOLE) console.log(`[firefox] ${e?.level}: ${e?.text}`);
    });
    await bounded(bidi.subscribe('log.entryAdded', [context]), T.join, 'log subscription');
    const init = typeof opts.init === 'function' ? opts.init.toString() : opts.init ? `() => {\n${opts.init}\n}` : null;
    for (const script of [PRELOAD, ...(init ? [init] : [])]) {
      const r = await bounded(
        bidi.send({ method: 'script.addPreloadScript', params: { functionDeclaration: script, contexts: [context] } }),
        T.join,
        'preload script',
      );
      if (r.type === 'error' || r.error) throw new Error(`preload script refused: ${JSON.stringify(r)}`);
    }
    return new FirefoxPage(driver, problems, close, () => log, dir);
  } catch (e) {
    await close();
    throw new Error(`firefox did not start: ${/** @type {Error} */ (e).message}\n${log}`);
  }
}

/**
 * One Firefox page, with the Playwright Page methods the tests use. Timeouts
 * are in ms as in Playwright (default T.join).
 */
export class FirefoxPage {
  /** @type {string} */
  #url = 'about:blank';
  #closed = false;
  /** @type {string} */
  #dir;

  /**
   * @param {import('selenium-webdriver').WebDriver} driver
   * @param {string[]} problems page errors (JS exceptions), as newPage()'s
   * @param {() => Promise<void>} close
   * @param {() => string} log geckodriver's and Firefox's output
   * @param {string} dir the session's own folder (removed on close)
   */
  constructor(driver, problems, close, log, dir) {
    this.#dir = dir;
    this.driver = driver;
    this.problems = problems;
    this.browserName = 'firefox';
    this.log = log;
    this.closeAll = close;
    this.keyboard = {
      /** @param {string} key a key name as Playwright's (`m`, `Enter`) */
      press: async (key) => {
        const k = KEYS[key] ?? key;
        await this.#bounded(this.driver.actions().keyDown(k).keyUp(k).perform(), T.short, `key ${key}`);
      },
    };
  }

  /**
   * @template V
   * @param {Promise<V>} p
   * @param {number} ms
   * @param {string} what
   */
  #bounded(p, ms, what) {
    return bounded(p, ms, what);
  }

  url() {
    return this.#url;
  }

  /** @param {string} url */
  async goto(url) {
    await this.#bounded(this.driver.get(url), T.join + 5000, `loading ${url}`);
    this.#url = url;
  }

  /**
   * Runs FN (a function without closures, as in Playwright) in the page with
   * ARG; a returned promise is awaited (WebDriver does that).
   * @param {Function | string} fn
   * @param {unknown} [arg]
   */
  async evaluate(fn, arg) {
    const body = typeof fn === 'string' ? `return (${fn});` : `return (${fn.toString()})(arguments[0]);`;
    return this.#script(body, arg);
  }

  /**
   * @param {string} body a script body (`arguments[0]` is ARG)
   * @param {unknown} arg
   * @param {number} [ms]
   */
  async #script(body, arg, ms = T.short + 5000) {
    return this.#bounded(this.driver.executeScript(body, arg), ms, 'a script');
  }

  /**
   * @param {Function | string} fn
   * @param {unknown} [arg]
   * @param {{timeout?: number}} [opts]
   */
  async waitForFunction(fn, arg, { timeout = T.join } = {}) {
    return until(() => this.evaluate(fn, arg), { timeout, interval: 100, what: `page function ${String(fn).slice(0, 80)}` });
  }

  /**
   * The element for SELECTOR, waited for (attached) up to the timeout.
   * @param {string} selector
   * @param {number} [timeout]
   * @returns {Promise<import('selenium-webdriver').WebElement>}
   */
  async #element(selector, timeout = T.join) {
    return until(
      () => this.#script(`return document.querySelector(${lit(selector)});`, null),
      { timeout, interval: 100, what: `${selector} in the Firefox page` },
    );
  }

  /**
   * Waits for SELECTOR to be in STATE ('visible' as Playwright's default:
   * attached with a non-empty box and not visibility:hidden).
   * @param {string} selector
   * @param {{state?: 'attached'|'detached'|'visible'|'hidden', timeout?: number}} [opts]
   */
  async waitForSelector(selector, { state = 'visible', timeout = T.join } = {}) {
    const check = `
      const el = document.querySelector(${lit(selector)});
      const visible = !!el && (() => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
      })();
      switch (${lit(state)}) {
        case 'attached': return !!el;
        case 'detached': return !el;
        case 'visible': return visible;
        default: return !visible;
      }`;
    await until(() => this.#script(check, null), { timeout, interval: 100, what: `${selector} to be ${state} in the Firefox page` });
    return true;
  }

  /**
   * Replaces the value of the field SELECTOR with VALUE by typing it.
   * @param {string} selector
   * @param {string} value
   */
  async fill(selector, value) {
    const el = await this.#element(selector);
    await this.#bounded(el.clear(), T.short, `clearing ${selector}`);
    if (value) await this.#bounded(el.sendKeys(value), T.short, `typing into ${selector}`);
  }

  /** @param {string} selector */
  async click(selector) {
    await this.waitForSelector(selector);
    const el = await this.#element(selector);
    await this.#bounded(el.click(), T.short, `clicking ${selector}`);
  }

  /**
   * @param {string} selector
   * @param {string} key a key name as Playwright's (`Enter`, `m`)
   */
  async press(selector, key) {
    const el = await this.#element(selector);
    await this.#bounded(el.sendKeys(KEYS[key] ?? key), T.short, `pressing ${key} in ${selector}`);
  }

  /**
   * Picks a file for the file input SELECTOR, as Playwright's
   * setInputFiles({name, buffer}): written to the profile's folder, then
   * typed into the input (file inputs need not be visible to WebDriver).
   * @param {string} selector
   * @param {{name: string, buffer: Buffer}} file
   */
  async setInputFiles(selector, file) {
    const folder = mkdtempSync(path.join(this.#dir, 'upload-'));
    const where = path.join(folder, path.basename(file.name));
    writeFileSync(where, file.buffer);
    const el = await this.#element(selector);
    await this.#bounded(el.sendKeys(where), T.short, `choosing a file in ${selector}`);
  }

  /** @param {string} selector */
  async focus(selector) {
    await this.#script(`document.querySelector(${lit(selector)}).focus();`, null);
  }

  /**
   * FN(element, ARG) for the first match of SELECTOR; throws when none.
   * @param {string} selector
   * @param {Function} fn
   * @param {unknown} [arg]
   */
  async $eval(selector, fn, arg) {
    return this.#script(
      `const el = document.querySelector(${lit(selector)});
       if (!el) throw new Error('no element for ' + ${lit(selector)});
       return (${fn.toString()})(el, arguments[0]);`,
      arg,
    );
  }

  /**
   * FN(elements, ARG) for every match of SELECTOR.
   * @param {string} selector
   * @param {Function} fn
   * @param {unknown} [arg]
   */
  async $$eval(selector, fn, arg) {
    return this.#script(`return (${fn.toString()})([...document.querySelectorAll(${lit(selector)})], arguments[0]);`, arg);
  }

  /**
   * Like Playwright's `$$`: the matches of SELECTOR (only their count is used).
   * @param {string} selector
   * @returns {Promise<unknown[]>}
   */
  async $$(selector) {
    const n = await this.#script(`return document.querySelectorAll(${lit(selector)}).length;`, null);
    return Array.from({ length: Number(n) }, () => ({}));
  }

  /**
   * Something truthy when SELECTOR matches, null when not (enough for the
   * tests' `assert.ok(await page.$(…))`).
   * @param {string} selector
   */
  async $(selector) {
    const n = await this.#script(`return document.querySelectorAll(${lit(selector)}).length;`, null);
    return Number(n) > 0 ? {} : null;
  }

  /** @param {string} selector */
  async textContent(selector) {
    await this.#element(selector);
    return this.$eval(selector, (/** @type {Element} */ e) => e.textContent);
  }

  /**
   * @param {string} selector
   * @param {string} name
   */
  async getAttribute(selector, name) {
    await this.#element(selector);
    return this.$eval(selector, (/** @type {Element} */ e, /** @type {string} */ n) => e.getAttribute(n), name);
  }

  /**
   * A PNG of the viewport, written to PATH when given.
   * @param {{path?: string}} [opts]
   */
  async screenshot({ path: file } = {}) {
    const png = Buffer.from(await this.#bounded(this.driver.takeScreenshot(), T.short, 'a screenshot'), 'base64');
    if (file) writeFileSync(file, png);
    return png;
  }

  /** @param {string} selector */
  async isVisible(selector) {
    try {
      await this.waitForSelector(selector, { state: 'visible', timeout: 0 });
      return true;
    } catch {
      return false;
    }
  }

  /** Ends the session and Firefox; safe to call twice, never hangs. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    await this.closeAll();
  }
}

/** @param {unknown} page */
export function isFirefox(page) {
  return page instanceof FirefoxPage;
}

/** True when this machine has what openFirefox() needs (for a clear error). */
export function firefoxAvailable() {
  const gd = geckodriverPath();
  const ok = existsSync(FIREFOX) && existsSync(gd);
  if (!ok) return { ok, why: `needs ${FIREFOX} (apt-get install firefox-esr) and ${gd} (cargo install geckodriver --locked)` };
  const v = spawnSync(gd, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return { ok: v.status === 0, why: v.status === 0 ? '' : `${gd} --version failed: ${v.stderr}` };
}
