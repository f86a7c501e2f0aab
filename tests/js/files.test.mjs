// The file-transfer state machine (web/js/files.js) under Node, with data
// channels simulated in memory: offers, answers, backpressure, cancels from
// either side, members leaving, and what a hostile sender can try.
//
//   node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveObjectURL } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  Files,
  HIGH_WATER,
  MAX_OPEN_OFFERS,
  CHUNK_BYTES,
  cleanFileName,
  overallState,
} from '../../web/js/files.js';

const tick = () => new Promise((r) => setImmediate(r));

/** Waits until COND holds (polling the event loop), at most 5 s. */
async function until(cond, what = 'condition') {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * One end of an in-memory data channel. Sent messages are delivered on a
 * later turn, a chunk per turn, so `bufferedAmount` grows when the sender
 * writes faster than that and `bufferedamountlow` fires as it drains.
 */
class FakeChannel extends EventTarget {
  readyState = 'connecting';
  binaryType = 'blob';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  maxBuffered = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  /** @type {FakeChannel | null} */
  peer = null;
  #queue = [];
  #pumping = false;

  constructor(label) {
    super();
    this.label = label;
  }

  send(data) {
    if (this.readyState !== 'open') throw new Error('InvalidStateError');
    const bytes = typeof data === 'string' ? data : new Uint8Array(data.buffer ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data);
    const size = typeof data === 'string' ? data.length : bytes.byteLength;
    this.bufferedAmount += size;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    this.#queue.push([bytes, size]);
    this.#pump();
  }

  async #pump() {
    if (this.#pumping) return;
    this.#pumping = true;
    while (this.#queue.length) {
      await tick();
      const [bytes, size] = this.#queue.shift();
      const was = this.bufferedAmount;
      this.bufferedAmount -= size;
      if (this.peer && this.peer.readyState === 'open') {
        const data = typeof bytes === 'string' ? bytes : bytes.buffer;
        this.peer.#fire('message', { data });
      }
      if (was > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
        this.#fire('bufferedamountlow', {});
      }
    }
    this.#pumping = false;
  }

  close() {
    for (const end of [this, this.peer]) {
      if (!end || end.readyState === 'closed') continue;
      end.readyState = 'closed';
      setImmediate(() => end.#fire('close', {}));
    }
  }

  open() {
    this.readyState = 'open';
    this.#fire('open', {});
  }

  #fire(type, init) {
    const ev = Object.assign(new Event(type), init);
    const handler = this[`on${type}`];
    if (typeof handler === 'function') handler.call(this, ev);
    this.dispatchEvent(ev);
  }
}

/**
 * A call of several pages, each a `Files`, linked pairwise in memory. The
 * messages go through JSON as on the wire.
 */
function call(names, opts = {}) {
  /** @type {Record<string, Files>} */
  const pages = {};
  for (const n of names) pages[n] = new Files(opts[n] || {});
  const log = [];
  const links = {};
  for (const a of names) {
    for (const b of names) {
      if (a === b) continue;
      const link = {
        cut: false,
        send(msg) {
          log.push([a, b, msg]);
          const text = JSON.stringify(msg);
          setImmediate(() => !link.cut && pages[b].onMessage(a, JSON.parse(text)));
        },
        openChannel(label) {
          const mine = new FakeChannel(label);
          const theirs = new FakeChannel(label);
          mine.peer = theirs;
          theirs.peer = mine;
          setImmediate(() => {
            if (!pages[b].onChannel(a, theirs)) theirs.close();
            if (theirs.readyState === 'closed') return;
            theirs.open();
            mine.open();
          });
          link.channels.push(mine);
          return mine;
        },
        maxMessageSize: () => 256 * 1024,
        channels: [],
      };
      links[`${a}>${b}`] = link;
      pages[a].attach(b, link);
    }
  }
  return { pages, links, log };
}

/** The first transfer of FILES matching PRED. */
function find(files, pred = () => true) {
  return [...files.transfers.values()].find(pred);
}

async function bytesOf(url) {
  const blob = resolveObjectURL(url);
  assert.ok(blob, 'the download URL resolves to a Blob');
  assert.equal(blob.type, 'application/octet-stream');
  return new Uint8Array(await blob.arrayBuffer());
}

test('a file reaches those who accept it, byte for byte, and not those who decline', async () => {
  const { pages, links } = call(['ann', 'bob', 'cid']);
  const data = randomBytes(3 * 1024 * 1024 + 123);
  const r = pages.ann.offer(Object.assign(new Blob([data]), { name: 'notes.bin' }));
  assert.ok('transfer' in r);
  await until(() => find(pages.bob.files ?? pages.bob) && find(pages.cid), 'offers');
  const atBob = find(pages.bob);
  assert.equal(atBob.direction, 'in');
  assert.equal(atBob.from, 'ann');
  assert.equal(atBob.name, 'notes.bin');
  assert.equal(atBob.size, data.length);
  assert.equal(atBob.state, 'offered');
  pages.bob.accept(atBob.key);
  pages.cid.decline(find(pages.cid).key);
  await until(() => atBob.state === 'done', 'bob done');
  assert.deepEqual(await bytesOf(atBob.url), new Uint8Array(data));
  const t = r.transfer;
  await until(() => t.legs.get('bob').state === 'done', 'ann sees bob done');
  assert.equal(t.legs.get('cid').state, 'declined');
  assert.equal(t.legs.get('cid').reason, 'declined');
  assert.equal(overallState(t), 'done');
  // Backpressure: never much more than the high-water mark in flight.
  const ch = links['ann>bob'].channels[0];
  assert.ok(ch.maxBuffered <= HIGH_WATER + 1024 * 1024, `buffered at most ${ch.maxBuffered}`);
  assert.ok(ch.maxBuffered > CHUNK_BYTES, 'more than one chunk was in flight');
  await until(() => ch.readyState === 'closed', 'the sender closes the channel when done');
});

test('an empty file arrives as an empty file', async () => {
  const { pages } = call(['ann', 'bob']);
  pages.ann.offer(Object.assign(new Blob([]), { name: 'empty.txt' }));
  await until(() => find(pages.bob), 'offer');
  const t = find(pages.bob);
  pages.bob.accept(t.key);
  await until(() => t.state === 'done', 'done');
  assert.equal((await bytesOf(t.url)).length, 0);
});

test('several transfers at once, in both directions', async () => {
  const { pages } = call(['ann', 'bob']);
  const a1 = randomBytes(700_000);
  const a2 = randomBytes(300_001);
  const b1 = randomBytes(1_000_000);
  pages.ann.offer(Object.assign(new Blob([a1]), { name: 'a1' }));
  pages.ann.offer(Object.assign(new Blob([a2]), { name: 'a2' }));
  pages.bob.offer(Object.assign(new Blob([b1]), { name: 'b1' }));
  await until(() => [...pages.bob.transfers.values()].filter((t) => t.direction === 'in').length === 2, 'offers');
  await until(() => find(pages.ann, (t) => t.direction === 'in'), 'offer');
  for (const p of [pages.ann, pages.bob]) {
    for (const t of p.transfers.values()) if (t.direction === 'in') p.accept(t.key);
  }
  const incoming = [...pages.ann.transfers.values(), ...pages.bob.transfers.values()].filter((t) => t.direction === 'in');
  await until(() => incoming.every((t) => t.state === 'done'), 'all done');
  const byName = Object.fromEntries(await Promise.all(incoming.map(async (t) => [t.name, await bytesOf(t.url)])));
  assert.deepEqual(byName.a1, new Uint8Array(a1));
  assert.deepEqual(byName.a2, new Uint8Array(a2));
  assert.deepEqual(byName.b1, new Uint8Array(b1));
});

test('either side can cancel mid-transfer, and the other is told', async () => {
  const { pages } = call(['ann', 'bob']);
  const big = new Blob([randomBytes(8 * 1024 * 1024)]);
  const first = pages.ann.offer(Object.assign(big, { name: 'x' })).transfer;
  await until(() => find(pages.bob), 'offer');
  const inc = find(pages.bob);
  pages.bob.accept(inc.key);
  await until(() => inc.bytes > 0, 'some bytes');
  pages.bob.cancel(inc.key);
  assert.equal(inc.state, 'cancelled');
  assert.equal(inc.reason, 'by-us');
  await until(() => first.legs.get('bob').state === 'cancelled', 'ann told');
  assert.equal(first.legs.get('bob').reason, 'by-them');

  const second = pages.ann.offer(Object.assign(new Blob([randomBytes(8 * 1024 * 1024)]), { name: 'y' })).transfer;
  await until(() => find(pages.bob, (t) => t.name === 'y'), 'offer');
  const inc2 = find(pages.bob, (t) => t.name === 'y');
  pages.bob.accept(inc2.key);
  await until(() => inc2.bytes > 0, 'some bytes');
  pages.ann.cancel(second.key);
  assert.equal(second.legs.get('bob').state, 'cancelled');
  await until(() => inc2.state === 'cancelled', 'bob told');
  assert.equal(inc2.reason, 'by-them');
  assert.equal(inc2.url, null);
});

test('a member leaving mid-transfer fails it on both sides with the reason', async () => {
  const { pages, links } = call(['ann', 'bob']);
  const t = pages.ann.offer(Object.assign(new Blob([randomBytes(8 * 1024 * 1024)]), { name: 'x' })).transfer;
  await until(() => find(pages.bob), 'offer');
  const inc = find(pages.bob);
  pages.bob.accept(inc.key);
  await until(() => inc.bytes > 0, 'some bytes');
  links['ann>bob'].cut = true;
  links['bob>ann'].cut = true;
  pages.ann.detach('bob', 'left');
  pages.bob.detach('ann', 'left');
  assert.equal(t.legs.get('bob').state, 'failed');
  assert.equal(t.legs.get('bob').reason, 'left');
  assert.equal(inc.state, 'failed');
  assert.equal(inc.reason, 'left');
});

test('a channel that drops without a word fails the transfer as lost', async () => {
  const { pages, links } = call(['ann', 'bob']);
  const t = pages.ann.offer(Object.assign(new Blob([randomBytes(8 * 1024 * 1024)]), { name: 'x' })).transfer;
  await until(() => find(pages.bob), 'offer');
  const inc = find(pages.bob);
  pages.bob.accept(inc.key);
  await until(() => inc.bytes > 0, 'some bytes');
  links['ann>bob'].channels[0].close();
  await until(() => inc.state === 'failed' && t.legs.get('bob').state === 'failed', 'both failed');
  assert.equal(inc.reason, 'lost');
  assert.equal(t.legs.get('bob').reason, 'lost');
});

test('files above the limit are refused at both ends', async () => {
  const { pages, log } = call(['ann', 'bob'], { bob: { maxFileSize: 1000 }, ann: { maxFileSize: 5000 } });
  assert.deepEqual(pages.ann.offer(new Blob([new Uint8Array(5001)])), { error: 'too-large' });
  const t = pages.ann.offer(Object.assign(new Blob([new Uint8Array(1001)]), { name: 'big' })).transfer;
  await until(() => t.legs.get('bob').state === 'declined', 'declined');
  assert.equal(t.legs.get('bob').reason, 'too-large');
  const inc = find(pages.bob);
  assert.equal(inc.state, 'declined');
  assert.equal(inc.reason, 'too-large');
  // Shown, but nothing to accept.
  pages.bob.accept(inc.key);
  assert.equal(inc.state, 'declined');
  assert.ok(log.some(([from, , m]) => from === 'bob' && m.type === 'file-decline' && m.reason === 'too-large'));
});

test('no one to send to', () => {
  const files = new Files();
  assert.deepEqual(files.offer(new Blob(['x'])), { error: 'empty-call' });
});

test('a flood of offers from one member is turned down past the open limit', async () => {
  const { pages, log } = call(['mal', 'bob']);
  for (let i = 0; i < MAX_OPEN_OFFERS + 5; i++) {
    pages.bob.onMessage('mal', { type: 'file-offer', id: `f${i}`, name: `f${i}`, size: 10 });
  }
  const shown = [...pages.bob.transfers.values()].filter((t) => t.from === 'mal');
  assert.equal(shown.length, MAX_OPEN_OFFERS);
  await tick();
  const busy = log.filter(([from, , m]) => from === 'bob' && m.type === 'file-decline' && m.reason === 'busy');
  assert.equal(busy.length, 5);
  // A declined one frees a place.
  pages.bob.decline(shown[0].key);
  pages.bob.onMessage('mal', { type: 'file-offer', id: 'late', name: 'late', size: 10 });
  assert.ok(find(pages.bob, (t) => t.id === 'late'));
});

test('malformed offers and answers are ignored', () => {
  const { pages } = call(['mal', 'bob']);
  const bad = [
    { type: 'file-offer', id: 'a b', name: 'x', size: 1 },
    { type: 'file-offer', id: 'x'.repeat(65), name: 'x', size: 1 },
    { type: 'file-offer', id: 'ok1', name: 'x', size: -1 },
    { type: 'file-offer', id: 'ok2', name: 'x', size: 1.5 },
    { type: 'file-offer', id: 'ok3', name: 'x', size: '10' },
    { type: 'file-offer', id: 'ok4', name: 'x', size: 2 ** 60 },
    { type: 'file-offer', name: 'x', size: 1 },
    { type: 'file-accept', id: 'nope' },
    { type: 'file-done', id: 'nope' },
    { type: 'file-cancel', id: 'nope' },
  ];
  for (const m of bad) pages.bob.onMessage('mal', m);
  assert.equal(pages.bob.transfers.size, 0);
  // The same id twice is one offer.
  pages.bob.onMessage('mal', { type: 'file-offer', id: 'dup', name: 'x', size: 1 });
  pages.bob.onMessage('mal', { type: 'file-offer', id: 'dup', name: 'y', size: 2 });
  assert.equal(pages.bob.transfers.size, 1);
  assert.equal(find(pages.bob).name, 'x');
});

test('a sender that sends more than it offered, or text, is stopped', async () => {
  for (const extra of [new Uint8Array(11).buffer, 'text']) {
    const bob = new Files();
    const sent = [];
    bob.attach('mal', { send: (m) => sent.push(m), openChannel: () => { throw new Error('unused'); }, maxMessageSize: () => 0 });
    bob.onMessage('mal', { type: 'file-offer', id: 'f', name: 'x', size: 10 });
    const t = find(bob);
    bob.accept(t.key);
    const ch = new FakeChannel('file:f');
    assert.equal(bob.onChannel('mal', ch), true);
    ch.open();
    ch.onmessage({ data: extra });
    assert.equal(t.state, 'failed');
    assert.equal(t.reason, 'bad-data');
    assert.ok(sent.some((m) => m.type === 'file-cancel' && m.id === 'f'));
    assert.equal(ch.readyState, 'closed');
  }
});

test('channels nobody asked for are closed; other labels are not ours', () => {
  const bob = new Files();
  bob.attach('mal', { send() {}, openChannel() { throw new Error('unused'); }, maxMessageSize: () => 0 });
  bob.onMessage('mal', { type: 'file-offer', id: 'f', name: 'x', size: 10 });
  // Offered but not accepted: the sender may not push the bytes.
  const early = new FakeChannel('file:f');
  assert.equal(bob.onChannel('mal', early), true);
  assert.equal(early.readyState, 'closed');
  const unknown = new FakeChannel('file:zzz');
  bob.onChannel('mal', unknown);
  assert.equal(unknown.readyState, 'closed');
  assert.equal(bob.onChannel('mal', new FakeChannel('other')), false);
});

test('a recipient cannot claim the file before it could have all of it', async () => {
  const { pages } = call(['ann', 'bob']);
  const t = pages.ann.offer(Object.assign(new Blob([randomBytes(8 * 1024 * 1024)]), { name: 'x' })).transfer;
  await until(() => find(pages.bob), 'offer');
  pages.bob.accept(find(pages.bob).key);
  await until(() => t.legs.get('bob').state === 'sending', 'sending');
  pages.ann.onMessage('bob', { type: 'file-done', id: t.id });
  assert.equal(t.legs.get('bob').state, 'sending');
});

test('file names are cleaned for showing and saving', () => {
  assert.equal(cleanFileName('report.pdf'), 'report.pdf');
  assert.equal(cleanFileName('../../etc/passwd'), 'passwd');
  assert.equal(cleanFileName('C:\\Users\\x\\evil.exe'), 'evil.exe');
  assert.equal(cleanFileName('a\u202Efdp.exe'), 'afdp.exe');
  assert.equal(cleanFileName('bad\u0000\u0007name\n'), 'badname');
  assert.equal(cleanFileName(''), 'file');
  assert.equal(cleanFileName('..'), 'file');
  assert.equal(cleanFileName(42), 'file');
  assert.equal([...cleanFileName('я'.repeat(300))].length, 255);
  assert.equal(cleanFileName('отчёт 2026.docx'), 'отчёт 2026.docx');
});
