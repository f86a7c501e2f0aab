// Benchmark (not a test): file throughput between two pages in a call, on
// loopback, against a floor measured in the same run with the same pages: a
// plain data channel on a bare RTCPeerConnection pair between them, written
// as fast as its buffer allows (64 KiB messages, from memory, counted and
// dropped on arrival). Run inside the loopback-only namespace:
//
//   sh tests/e2e/run.sh bench-files [runs] [MiB]   (default 3 runs of 64 MiB)
//
// The two are measured alternately, so a slower moment of the machine hits
// both. The huddle figure is from the click on Accept to the download link:
// reading the file, the channel, and building the received file.

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { closeBrowser, join, launchBrowser, median, newPage, startServer, waitForMedia } from './helpers.mjs';

const RUNS = Math.max(1, Math.min(10, Number(process.argv[2]) || 3));
const MIB = Math.max(1, Math.min(1024, Number(process.argv[3]) || 64));
const BYTES = MIB * 1024 * 1024;

const server = await startServer(['--max-file-size', '2GiB']);
const browser = await launchBrowser();
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'huddle-bench-files-'));

/**
 * The floor: a bare data channel from A to B, BYTES written from memory.
 * @param {import('playwright-core').Page} a
 * @param {import('playwright-core').Page} b
 * @returns {Promise<number>} seconds from the channel opening to the last byte's arrival
 */
async function plainChannel(a, b) {
  await b.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__pc = new RTCPeerConnection();
    w.__got = 0;
    w.__end = 0;
    w.__pc.ondatachannel = (/** @type {RTCDataChannelEvent} */ e) => {
      e.channel.binaryType = 'arraybuffer';
      e.channel.onmessage = (/** @type {MessageEvent} */ m) => { w.__got += m.data.byteLength; if (w.__got >= w.__want) w.__end = performance.now(); };
    };
    w.__candidates = [];
    w.__pc.onicecandidate = (/** @type {RTCPeerConnectionIceEvent} */ e) => e.candidate && w.__candidates.push(e.candidate.toJSON());
  });
  await b.evaluate((n) => { /** @type {any} */ (window).__want = n; }, BYTES);
  const offer = await a.evaluate(async () => {
    const w = /** @type {any} */ (window);
    w.__pc = new RTCPeerConnection();
    w.__candidates = [];
    w.__pc.onicecandidate = (/** @type {RTCPeerConnectionIceEvent} */ e) => e.candidate && w.__candidates.push(e.candidate.toJSON());
    w.__ch = w.__pc.createDataChannel('floor');
    await w.__pc.setLocalDescription();
    return w.__pc.localDescription.toJSON();
  });
  const answer = await b.evaluate(async (o) => {
    const pc = /** @type {any} */ (window).__pc;
    await pc.setRemoteDescription(o);
    await pc.setLocalDescription();
    return pc.localDescription.toJSON();
  }, offer);
  await a.evaluate((d) => /** @type {any} */ (window).__pc.setRemoteDescription(d), answer);
  await new Promise((r) => setTimeout(r, 500));
  const [ca, cb] = await Promise.all([a.evaluate(() => /** @type {any} */ (window).__candidates), b.evaluate(() => /** @type {any} */ (window).__candidates)]);
  await a.evaluate((cs) => Promise.all(cs.map((/** @type {any} */ c) => /** @type {any} */ (window).__pc.addIceCandidate(c))), cb);
  await b.evaluate((cs) => Promise.all(cs.map((/** @type {any} */ c) => /** @type {any} */ (window).__pc.addIceCandidate(c))), ca);
  const start = await a.evaluate(async (total) => {
    const w = /** @type {any} */ (window);
    const ch = /** @type {RTCDataChannel} */ (w.__ch);
    if (ch.readyState !== 'open') await new Promise((r) => ch.addEventListener('open', r, { once: true }));
    const t0 = performance.now() + performance.timeOrigin;
    const chunk = new Uint8Array(64 * 1024);
    ch.bufferedAmountLowThreshold = 1024 * 1024;
    let sent = 0;
    while (sent < total) {
      if (ch.bufferedAmount > 4 * 1024 * 1024) {
        await new Promise((r) => ch.addEventListener('bufferedamountlow', r, { once: true }));
        continue;
      }
      const n = Math.min(chunk.byteLength, total - sent);
      ch.send(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
      sent += n;
    }
    return t0;
  }, BYTES);
  const end = await (async () => {
    for (;;) {
      const e = await b.evaluate(() => { const w = /** @type {any} */ (window); return w.__end ? w.__end + performance.timeOrigin : 0; });
      if (e) return e;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await a.evaluate(() => /** @type {any} */ (window).__pc.close());
  await b.evaluate(() => /** @type {any} */ (window).__pc.close());
  return (end - start) / 1000;
}

/**
 * huddle's file transfer from A to B of FILE (a path), accept to download link.
 * @param {import('playwright-core').Page} a
 * @param {import('playwright-core').Page} b
 * @param {string} file
 * @param {number} run
 */
async function huddleFile(a, b, file, run) {
  const name = `bench-${run}.bin`;
  const entry = `#messages [data-file]:has(.file-name:text-is("${name}"))`;
  await a.setInputFiles('#chat input[type=file][name=file]', { name, mimeType: 'application/octet-stream', buffer: await fs.readFile(file) }).catch(async () => {
    const named = path.join(dir, name);
    await fs.copyFile(file, named);
    await a.setInputFiles('#chat input[type=file][name=file]', named);
  });
  await b.waitForSelector(`${entry}[data-state=offered]`);
  const t0 = Date.now();
  await b.click(`${entry} [data-action=accept-file]`);
  await b.waitForSelector(`${entry} a[download]`, { timeout: 600_000 });
  const seconds = (Date.now() - t0) / 1000;
  // Let go of the received copy before the next run.
  await b.evaluate((n) => {
    const files = /** @type {any} */ (window).huddle.room.files;
    for (const [k, t] of files.transfers) if (t.name === n && t.url) { URL.revokeObjectURL(t.url); files.transfers.delete(k); }
  }, name);
  return seconds;
}

try {
  const file = path.join(dir, 'payload.bin');
  await fs.writeFile(file, crypto.randomBytes(BYTES));
  const [a, b] = await Promise.all([newPage(browser), newPage(browser)]);
  await join(a, server.url, 'ann', 'bench-files');
  await join(b, server.url, 'ben', 'bench-files');
  await waitForMedia(b, ['ann']);
  await waitForMedia(a, ['ben']);
  /** @type {number[]} */
  const floor = [];
  /** @type {number[]} */
  const ours = [];
  for (let run = 1; run <= RUNS; run += 1) {
    floor.push(await plainChannel(a, b));
    ours.push(await huddleFile(a, b, file, run));
    console.log(`run ${run}: plain channel ${(MIB / floor[run - 1]).toFixed(1)} MiB/s, huddle file ${(MIB / ours[run - 1]).toFixed(1)} MiB/s`);
  }
  const f = MIB / median(floor);
  const h = MIB / median(ours);
  console.log(`\n${MIB} MiB, ${RUNS} runs, medians: plain data channel ${f.toFixed(1)} MiB/s, huddle file ${h.toFixed(1)} MiB/s, ratio ${(h / f).toFixed(2)}`);
} finally {
  await closeBrowser(browser);
  await server.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
