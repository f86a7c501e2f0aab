// Benchmark: how fast a call comes back when a member's network changes
// (issue 14, item 2; target: media within 3 s of the network returning).
// In each round a fresh two-person call between two network namespaces
// (netchange-helpers.mjs) goes through a flap of ann's interface (down for
// DOWN ms, then up) and a move of ann's address to another subnet; bob's
// page measures the longest gap in ann's frames and how long after the
// network returned the frames came back. With REF_BIN (another huddle
// build, e.g. /work/main/target/debug/huddle: a debug build serves the web
// client of its own checkout) every round also runs the same with that
// build's client, for a ratio measured in the same run.
//
//   sh tests/e2e/run.sh bench-netchange [rounds] [down-ms]
//   REF_BIN=../main/target/debug/huddle sh tests/e2e/run.sh bench-netchange 3

import { median } from './helpers.mjs';
import { startNetCall } from './netchange-helpers.mjs';

const rounds = Number(process.argv[2] || 3);
const downMs = Number(process.argv[3] || 3000);
/** Waited for after the frames are back, before the next change (ms). */
const SETTLE_MS = 4000;
/** Longest wait for the frames to come back (ms); a round past it counts as this. */
const GIVE_UP_MS = 40_000;

/** @type {{name:string, bin?:string}[]} */
const clients = [{ name: 'this build' }];
if (process.env.REF_BIN) clients.unshift({ name: `REF_BIN (${process.env.REF_BIN})`, bin: process.env.REF_BIN });

/** @type {Record<string, Record<string, {gap:number[], recover:number[], disc:(number|null)[]}>>} */
const results = {};
for (const c of clients) results[c.name] = { flap: { gap: [], recover: [], disc: [] }, move: { gap: [], recover: [], disc: [] } };

for (let r = 1; r <= rounds; r += 1) {
  for (const c of clients) {
    const call = await startNetCall(`bench-${r}`, c.bin ? { bin: c.bin } : {});
    try {
      for (const kind of /** @type {const} */ (['flap', 'move'])) {
        const event = kind === 'flap' ? await call.flap(downMs) : await call.move();
        let m;
        try {
          m = await call.measure(event, { timeout: GIVE_UP_MS });
        } catch {
          m = { gapMs: GIVE_UP_MS, recoverMs: GIVE_UP_MS, disconnectedMs: { ann: null, bob: null } };
        }
        const into = results[c.name][kind];
        into.gap.push(m.gapMs);
        into.recover.push(m.recoverMs);
        into.disc.push(m.disconnectedMs.ann);
        console.log(`round ${r} ${c.name} ${kind}: gap ${m.gapMs} ms, back ${m.recoverMs} ms after the network` +
          ` (browser's disconnected at ann: ${m.disconnectedMs.ann ?? 'never'})`);
        await new Promise((res) => setTimeout(res, SETTLE_MS));
      }
    } finally {
      await call.stop();
    }
  }
}

const fmt = (/** @type {number[]} */ xs) => `${(median(xs) / 1000).toFixed(2)} s (max ${(Math.max(...xs) / 1000).toFixed(2)})`;
console.log(`\n${rounds} rounds, flap = interface down ${downMs} ms; times from the network returning (move: the new address)`);
console.log('| client | change | frames back after the network, median (max) | longest frame gap, median (max) | within 3 s |');
console.log('|---|---|---|---|---|');
for (const c of clients) {
  for (const kind of ['flap', 'move']) {
    const x = results[c.name][kind];
    const ok = x.recover.filter((v) => v <= 3000).length;
    console.log(`| ${c.name} | ${kind} | ${fmt(x.recover)} | ${fmt(x.gap)} | ${ok}/${x.recover.length} |`);
  }
}
if (clients.length === 2) {
  for (const kind of ['flap', 'move']) {
    const ref = median(results[clients[0].name][kind].recover);
    const ours = median(results[clients[1].name][kind].recover);
    console.log(`${kind}: this build ÷ REF_BIN (frames back, medians) = ${(ours / Math.max(1, ref)).toFixed(2)}`);
  }
}
