// Benchmark (not a test): a two-person call set up directly, relay-only
// through the embedded TURN server, and relay-only through coturn; runs
// interleaved. Run inside the loopback-only namespace with a release build:
//
//   cargo build --release
//   HUDDLE_BIN=target/release/huddle sh tests/e2e/run.sh bench-turn [runs]
//
// Per run and mode: time from clicking Join (the second person) to the first
// remote video frame. Then, with the call held for HOLD_S seconds: the
// call's bitrate through the relay (both directions, from getStats) and the
// CPU of the process relaying it (huddle, which also does the signaling, or
// coturn), from /proc.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  closeBrowser, launchBrowser, newPage, startServer, stats, until, waitForMedia, T,
} from './helpers.mjs';

const RUNS = Math.max(1, Math.min(20, Number(process.argv[2]) || 5));
const HOLD_S = 20;
const SECRET = 'bench-secret';
const TICK = 100; // USER_HZ

// In-page probe: t0 = Join submitted, t1 = first remote frame shown.
const probe = () => {
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
      if ('requestVideoFrameCallback' in v) v.requestVideoFrameCallback(mark);
      else v.addEventListener('resize', mark, { once: true });
    }
  }).observe(document, { subtree: true, childList: true });
};

/** @param {number} pid CPU seconds (user + system) used so far. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', () => r(undefined)));
  const port = /** @type {net.AddressInfo} */ (srv.address()).port;
  await new Promise((r) => srv.close(() => r(undefined)));
  return port;
}

async function startCoturn() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-coturn-'));
  const proc = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    '--min-port=40000', '--max-port=40999', '--use-auth-secret', `--static-auth-secret=${SECRET}`,
    '--realm=huddle.test', '--no-tls', '--no-dtls', '--allow-loopback-peers', '--no-cli',
    '--fingerprint', '--log-file=stdout', `--pidfile=${path.join(dir, 'pid')}`,
    `--userdb=${path.join(dir, 'db')}`,
  ], { stdio: 'ignore' });
  await until(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), { timeout: T.server, what: 'coturn listening' });
  return {
    port,
    pid: /** @type {number} */ (proc.pid),
    stop() {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const coturn = await startCoturn();
const servers = {
  direct: await startServer([]),
  embedded: await startServer(['--turn-listen', '127.0.0.1:0', '--turn-secret', SECRET]),
  coturn: await startServer(['--turn-url', `turn:127.0.0.1:${coturn.port}?transport=udp`, '--turn-secret', SECRET]),
};
/** Which process relays the media in each mode. */
const relayPid = { direct: 0, embedded: servers.embedded.pid, coturn: coturn.pid };
const browser = await launchBrowser();
/** @type {Record<string, number[]>} */
const setup = { direct: [], embedded: [], coturn: [] };
/** @type {Record<string, {mbit:number, cpu:number}[]>} */
const held = { embedded: [], coturn: [] };

try {
  for (let run = 1; run <= RUNS; run += 1) {
    for (const mode of /** @type {const} */ (['direct', 'embedded', 'coturn'])) {
      const server = servers[mode];
      const query = mode === 'direct' ? '' : '?relay=1';
      const room = `bench-${mode}-${run}`;
      const pages = [];
      for (const name of ['ann', 'bob']) {
        const page = await newPage(browser, { init: probe });
        await page.goto(`${server.url}/r/${room}${query}`);
        await page.waitForFunction(() => /** @type {any} */ (window).huddle?.media.result !== null);
        await page.fill('input[name=name]', name);
        await page.click('form#join button[type=submit]');
        await page.waitForSelector('body[data-view=call]');
        pages.push(page);
      }
      const bob = pages[1];
      await bob.waitForFunction(() => /** @type {any} */ (window).__bench.t1 !== null, null, { timeout: 60_000 });
      setup[mode].push(await bob.evaluate(() => /** @type {any} */ (window).__bench.t1 - /** @type {any} */ (window).__bench.t0));
      await waitForMedia(pages[0], ['bob']);
      await waitForMedia(pages[1], ['ann']);
      let line = `run ${run} ${mode}: join → first frame ${setup[mode].at(-1)?.toFixed(0)} ms`;
      if (mode !== 'direct') {
        // Let the bitrate ramp up, then measure a steady stretch.
        await new Promise((r) => setTimeout(r, 5000));
        const sent = async () => {
          const [a, b] = [(await stats(pages[0])).bob.path, (await stats(pages[1])).ann.path];
          return (a?.bytesSent || 0) + (b?.bytesSent || 0);
        };
        const bytes0 = await sent();
        const cpu0 = cpuSeconds(relayPid[mode]);
        const t0 = Date.now();
        await new Promise((r) => setTimeout(r, HOLD_S * 1000));
        const secs = (Date.now() - t0) / 1000;
        const mbit = ((await sent()) - bytes0) * 8 / secs / 1e6;
        const cpu = (cpuSeconds(relayPid[mode]) - cpu0) / secs * 100;
        held[mode].push({ mbit, cpu });
        line += `; relayed ${mbit.toFixed(2)} Mbit/s at ${cpu.toFixed(1)} % CPU`;
      }
      console.log(line);
      for (const p of pages) await p.context().close();
    }
  }
} finally {
  await closeBrowser(browser);
  for (const s of Object.values(servers)) await s.stop();
  coturn.stop();
}

console.log(`\n${RUNS} runs, medians:`);
for (const mode of Object.keys(setup)) {
  const d = median(setup.direct);
  const m = median(setup[mode]);
  console.log(`  ${mode.padEnd(8)} join → first frame ${m.toFixed(0)} ms (${(m / d).toFixed(2)}× direct)`);
}
for (const mode of Object.keys(held)) {
  const mbit = median(held[mode].map((h) => h.mbit));
  const cpu = median(held[mode].map((h) => h.cpu));
  console.log(`  ${mode.padEnd(8)} relays ${mbit.toFixed(2)} Mbit/s at ${cpu.toFixed(1)} % of a core (${(cpu / mbit).toFixed(2)} %/Mbit/s)`);
}
