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

import { readFileSync } from 'node:fs';
import {
  closeBrowser, firstFrameProbe, launchBrowser, median, newPage, startCoturn, startServer, stats,
  waitForMedia,
} from './helpers.mjs';

const RUNS = Math.max(1, Math.min(20, Number(process.argv[2]) || 5));
const HOLD_S = 20;
const SECRET = 'bench-secret';
const TICK = 100; // USER_HZ

/** @param {number} pid CPU seconds (user + system) used so far. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

const coturn = await startCoturn(SECRET);
const servers = {
  direct: await startServer([]),
  embedded: await startServer(['--turn-listen', '127.0.0.1:0', '--turn-secret', SECRET, '--turn-allowed-peer-ip', '127.0.0.0/8']),
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
        const page = await newPage(browser, { init: firstFrameProbe });
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
