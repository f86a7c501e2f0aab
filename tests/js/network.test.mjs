// The network watch (web/js/network.js) under Node: candidate lines parsed,
// address sets compared, and check() deciding from what our own calls used
// and what a probe finds (a gather function stands in for the browser).
//
//   node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkWatch, differ, parseCandidate } from '../../web/js/network.js';

/** @param {string} address */
const host = (address, type = 'host', proto = 'udp') =>
  ({ candidate: `candidate:1 1 ${proto} 2122194687 ${address} 45128 typ ${type} generation 0 ufrag t7ld network-id 1` });

test('parseCandidate reads address, protocol and type, and refuses other lines', () => {
  assert.deepEqual(parseCandidate(host('10.78.1.2').candidate), { address: '10.78.1.2', protocol: 'udp', type: 'host' });
  assert.deepEqual(parseCandidate(`a=${host('fe80::1', 'srflx', 'UDP').candidate}`), { address: 'fe80::1', protocol: 'udp', type: 'srflx' });
  assert.equal(parseCandidate(''), null);
  assert.equal(parseCandidate('candidate:1 1 udp 1 10.0.0.1 9 host'), null);
  assert.equal(parseCandidate('not a candidate line at all x y z'), null);
  // @ts-ignore a hostile or missing value
  assert.equal(parseCandidate(undefined), null);
});

test('differ compares sets both ways', () => {
  assert.equal(differ(new Set(['a']), new Set(['a'])), false);
  assert.equal(differ(new Set(['a']), new Set(['b'])), true);
  assert.equal(differ(new Set(['a']), new Set(['a', 'b'])), true);
  assert.equal(differ(new Set(['a', 'b']), new Set(['a'])), true);
  assert.equal(differ(new Set(), new Set()), false);
});

test('check: no change without candidates to compare with, nor when the probe cannot tell', async () => {
  let now = /** @type {string[] | null} */ (['10.0.0.2']);
  const w = new NetworkWatch({ gather: async () => now });
  let changes = 0;
  w.addEventListener('change', () => { changes += 1; });
  assert.equal(await w.check(), false, 'nothing noted yet');
  w.noteCandidate(host('10.0.0.9'));
  now = null;
  assert.equal(await w.check(), false, 'inconclusive probe (mDNS names)');
  assert.equal(w.addresses, null);
  assert.equal(changes, 0);
  assert.equal(w.changedWithin(), false);
});

test('check: the address our calls used is gone → change, once; then the new address is the baseline', async () => {
  let now = ['10.78.1.2'];
  const w = new NetworkWatch({ gather: async () => now });
  /** @type {string[]} */
  const reasons = [];
  w.addEventListener('change', (e) => reasons.push(/** @type {CustomEvent} */ (e).detail.reason));
  w.noteCandidate(host('10.78.1.2'));
  // Ignored: not host, not UDP, mDNS, junk.
  w.noteCandidate(host('192.0.2.1', 'srflx'));
  w.noteCandidate(host('10.9.9.9', 'host', 'tcp'));
  w.noteCandidate(host('1f2e.local'));
  w.noteCandidate(null);
  w.noteCandidate({ candidate: '' });
  assert.equal(await w.check(), false, 'same address');
  now = ['10.78.3.2'];
  assert.equal(await w.check(), true, 'moved');
  assert.deepEqual(reasons, ['address']);
  assert.equal(w.changedWithin(), true);
  assert.deepEqual([...(w.addresses || [])], ['10.78.3.2']);
  assert.equal(await w.check(), false, 'the new address is the baseline now');
  // The interface goes down (no address), then comes back: two changes.
  now = [];
  assert.equal(await w.check(), true);
  assert.equal(w.addresses?.size, 0);
  now = ['10.78.3.2'];
  assert.equal(await w.check(), true);
  assert.deepEqual(reasons, ['address', 'address', 'address']);
});

test('check: concurrent callers share one probe; a failing probe is no change', async () => {
  let calls = 0;
  /** @type {(v: string[]) => void} */
  let release = () => {};
  const w = new NetworkWatch({
    gather: () => {
      calls += 1;
      return new Promise((r) => { release = r; });
    },
  });
  w.noteCandidate(host('10.0.0.1'));
  const a = w.check();
  const b = w.check();
  release(['10.0.0.2']);
  assert.deepEqual(await Promise.all([a, b]), [true, true]);
  assert.equal(calls, 1);
  const broken = new NetworkWatch({ gather: async () => { throw new Error('no RTCPeerConnection'); } });
  broken.noteCandidate(host('10.0.0.1'));
  assert.equal(await broken.check(), false);
});
