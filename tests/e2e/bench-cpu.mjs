// Benchmark (not a test): CPU of a three-way call in headless Chromium,
// without and with a screen share. Run inside the loopback-only namespace:
//
//   sh tests/e2e/run.sh bench-cpu [rounds] [seconds]   (default 3 rounds of 15 s)
//
// Three pages (one browser, so every encoder and decoder of the call is on
// this machine) join a room; then, alternately, a window with no share and
// a window while one page shares its (fake, 1280×720) screen. The figure is
// the CPU time of the browser's whole process tree over the window, from
// /proc, as cores busy (1.00 = one core all the time). Alternating keeps a
// noisy neighbour from landing on one side only; the ratio is share / none.

import fs from 'node:fs';
import { closeBrowser, join, launchBrowser, median, newPage, startServer, waitForMedia } from './helpers.mjs';

const ROUNDS = Math.max(1, Math.min(10, Number(process.argv[2]) || 3));
const SECONDS = Math.max(5, Math.min(120, Number(process.argv[3]) || 15));
const TICK = 100; // USER_HZ: /proc's clock ticks per second on Linux

/** CPU ticks (user + system) of the trees under ROOT's children other than SKIP. */
function treeTicks(root, skip) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  /** @type {Map<number, number>} */
  const ticks = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command may hold spaces and parentheses: fields follow the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    ticks.set(Number(entry), Number(f[11]) + Number(f[12]));
    if (!children.has(ppid)) children.set(ppid, []);
    /** @type {number[]} */ (children.get(ppid)).push(Number(entry));
  }
  let sum = 0;
  const stack = (children.get(root) || []).filter((p) => p !== skip);
  while (stack.length) {
    const p = /** @type {number} */ (stack.pop());
    sum += ticks.get(p) || 0;
    stack.push(...(children.get(p) || []));
  }
  return sum;
}

/** Cores busy in the browser's process tree (this process' children but
 * the server) over SECONDS. */
async function window() {
  const t0 = treeTicks(process.pid, server.pid);
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  return (treeTicks(process.pid, server.pid) - t0) / TICK / ((performance.now() - w0) / 1000);
}

const server = await startServer();
const browser = await launchBrowser();
try {
  const names = ['ann', 'ben', 'cat'];
  const pages = await Promise.all(names.map(() => newPage(browser)));
  for (let i = 0; i < names.length; i++) await join(pages[i], server.url, names[i], 'bench-cpu');
  for (let i = 0; i < names.length; i++) await waitForMedia(pages[i], names.filter((n) => n !== names[i]));
  await new Promise((r) => setTimeout(r, 3000)); // past the first seconds' ramp-up
  /** @type {number[]} */
  const none = [];
  /** @type {number[]} */
  const share = [];
  for (let round = 1; round <= ROUNDS; round++) {
    none.push(await window());
    await pages[0].click('[data-action=share-screen]');
    for (const p of pages.slice(1)) await p.waitForSelector('#grid [data-peer="ann"][data-kind=screen]');
    await new Promise((r) => setTimeout(r, 2000));
    share.push(await window());
    await pages[0].click('[data-action=share-screen]');
    for (const p of pages.slice(1)) await p.waitForSelector('#grid [data-peer="ann"][data-kind=screen]', { state: 'detached' });
    await new Promise((r) => setTimeout(r, 2000));
    console.log(`round ${round}: no share ${none[round - 1].toFixed(2)} cores, one share ${share[round - 1].toFixed(2)} cores`);
  }
  const n = median(none);
  const s = median(share);
  console.log(`\nthree-way call, ${ROUNDS} rounds of ${SECONDS} s, medians: no share ${n.toFixed(2)} cores, one share ${s.toFixed(2)} cores, ratio ${(s / n).toFixed(2)}`);
} finally {
  await closeBrowser(browser);
  await server.stop();
}
