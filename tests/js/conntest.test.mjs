// The join page's connection test (web/js/conntest.js) under Node: URL
// parsing, candidate classification, the verdict and its advice, the result
// rows, and the test's flow against a scripted stand-in for
// RTCPeerConnection (candidates, getStats, a data channel that echoes or
// stays silent).
//
//   node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addCandidate,
  describeServers,
  emptyFound,
  fetchIceServers,
  gather,
  parseIceUrl,
  portsToOpen,
  relayRoundTrip,
  resultRows,
  runConnectionTest,
  typeFromLine,
  verdict,
} from '../../web/js/conntest.js';

// ------------------------------------------------------------------ URLs

test('parseIceUrl: schemes, default ports and transports', () => {
  assert.deepEqual(parseIceUrl('stun:stun.example.org'), {
    scheme: 'stun', host: 'stun.example.org', port: 3478, transport: 'udp', url: 'stun:stun.example.org',
  });
  assert.equal(parseIceUrl('turn:127.0.0.1:58832?transport=udp')?.transport, 'udp');
  assert.equal(parseIceUrl('turn:127.0.0.1:58832?transport=tcp')?.transport, 'tcp');
  // A turn: URL without a transport is UDP, as browsers take it.
  assert.equal(parseIceUrl('turn:example.org')?.transport, 'udp');
  assert.equal(parseIceUrl('turn:example.org')?.port, 3478);
  // turns: is TLS over TCP, port 5349 unless given (e.g. the HTTPS port).
  assert.deepEqual(
    [parseIceUrl('turns:call.example.org')?.transport, parseIceUrl('turns:call.example.org')?.port],
    ['tls', 5349],
  );
  assert.equal(parseIceUrl('turns:call.example.org:443?transport=tcp')?.port, 443);
  assert.equal(parseIceUrl('TURN:Example.org:80?transport=TCP')?.transport, 'tcp');
  assert.equal(parseIceUrl('turn:[::1]:3478?transport=tcp')?.host, '[::1]');
});

test('parseIceUrl: anything else is null', () => {
  for (const bad of [
    '', 'http://example.org', 'turn:', 'turn:host:0', 'turn:host:70000', 'turn:host:3478?transport=sctp',
    'turn:user@host', 'turn:host/path', 'stun: host', 42, null, undefined, {},
  ]) {
    assert.equal(parseIceUrl(bad), null, String(bad));
  }
});

test('describeServers: any number of servers, urls as a string or a list', () => {
  const s = describeServers([
    { urls: 'stun:stun.example.org:3478' },
    { urls: ['turn:t.example.org:3478?transport=udp', 'turn:t.example.org:3478?transport=tcp'], username: 'u', credential: 'c' },
    { urls: ['turns:t.example.org:443?transport=tcp', 'turn:t.example.org:443?transport=tcp'], username: 'u', credential: 'c' },
    { urls: 'bogus:x' },
    null,
  ]);
  assert.equal(s.stun.length, 1);
  assert.deepEqual(s.turn.map((u) => `${u.transport} ${u.port}`), ['udp 3478', 'tcp 3478', 'tls 443', 'tcp 443']);
  assert.equal(s.unknown, 2);
  assert.deepEqual(describeServers(undefined), { stun: [], turn: [], unknown: 0 });
  assert.deepEqual(describeServers([]), { stun: [], turn: [], unknown: 0 });
});

test('portsToOpen: each transport and port once, TURN before STUN', () => {
  const s = describeServers([{ urls: ['turn:h:3478?transport=udp', 'turn:h:3478?transport=tcp', 'turn:h2:3478?transport=udp', 'turns:h:443'] }]);
  assert.equal(portsToOpen(s), 'UDP 3478, TCP 3478, TLS 443');
  assert.equal(portsToOpen(describeServers([{ urls: 'stun:h:19302' }])), 'UDP 19302');
});

// ------------------------------------------------------------- candidates

test('addCandidate: types from getStats, RTCIceCandidate or the SDP line', () => {
  const f = emptyFound();
  addCandidate(f, { candidateType: 'host' });
  assert.equal(f.host, true);
  addCandidate(f, { candidate: 'candidate:1 1 udp 1686052607 203.0.113.5 40000 typ srflx raddr 10.0.0.2 rport 5000' });
  assert.equal(f.srflx, true);
  addCandidate(f, { type: 'relay', relayProtocol: 'tcp' });
  assert.equal(f.relay.tcp, true);
  // Chromium's RTCIceCandidate leaves relayProtocol null for UDP relays
  // but names the server it came from.
  addCandidate(f, { type: 'relay', relayProtocol: null, url: 'turn:127.0.0.1:3478?transport=udp' });
  assert.equal(f.relay.udp, true);
  addCandidate(f, { type: 'relay', url: 'turns:example.org:443?transport=tcp' });
  assert.equal(f.relay.tls, true);
  assert.equal(f.relay.unknown, false);
  addCandidate(f, { type: 'relay' });
  assert.equal(f.relay.unknown, true);
  // prflx and nonsense add nothing.
  const g = addCandidate(addCandidate(emptyFound(), { type: 'prflx' }), { type: 'weird' });
  assert.deepEqual(g, emptyFound());
});

test('typeFromLine', () => {
  assert.equal(typeFromLine('candidate:9 1 udp 5 127.0.0.1 1 typ relay raddr 0.0.0.0 rport 0'), 'relay');
  assert.equal(typeFromLine('candidate:9 1 tcp 5 127.0.0.1 9 typ host tcptype active'), 'host');
  assert.equal(typeFromLine('no type here'), '');
});

// ---------------------------------------------------------------- verdict

const TURN_UDP_TCP = describeServers([{ urls: ['turn:h:3478?transport=udp', 'turn:h:3478?transport=tcp'], username: 'u', credential: 'c' }]);
const STUN_ONLY = describeServers([{ urls: 'stun:h:3478' }]);
const NONE = describeServers([]);
/** @param {Partial<{host:boolean, srflx:boolean, udp:boolean, tcp:boolean, tls:boolean, unknown:boolean}>} k */
const found = (k) => ({
  host: !!k.host, srflx: !!k.srflx,
  relay: { udp: !!k.udp, tcp: !!k.tcp, tls: !!k.tls, unknown: !!k.unknown },
});
const RTT_OK = /** @type {const} */ ({ ok: true, rttMs: 12, protocol: 'udp' });
const RTT_TCP = /** @type {const} */ ({ ok: true, rttMs: 30, protocol: 'tcp' });
const RTT_NO = /** @type {const} */ ({ ok: false, reason: 'no-connection' });
const NO_RELAY = /** @type {const} */ ({ ok: false, reason: 'no-relay' });
const SKIPPED = /** @type {const} */ ({ ok: false, reason: 'skipped' });

test('verdict: direct when UDP reaches the relay and the round trip works', () => {
  // On loopback there is no srflx: the UDP relay candidate is the sign.
  assert.deepEqual(verdict({ servers: TURN_UDP_TCP, found: found({ host: true, udp: true, tcp: true }), roundTrip: RTT_OK }),
    { verdict: 'direct', advice: 'all-good', ports: '' });
  // A srflx (from the TURN server's STUN) is as good a sign.
  assert.equal(verdict({ servers: TURN_UDP_TCP, found: found({ host: true, srflx: true, tcp: true }), roundTrip: RTT_TCP }).verdict, 'direct');
});

test('verdict: relay when only TCP/TLS reaches the relay and the round trip works', () => {
  assert.deepEqual(verdict({ servers: TURN_UDP_TCP, found: found({ host: true, tcp: true }), roundTrip: RTT_TCP }),
    { verdict: 'relay', advice: 'udp-blocked', ports: '' });
  const tls = describeServers([{ urls: ['turn:h:3478', 'turns:h:443'] }]);
  assert.equal(verdict({ servers: tls, found: found({ host: true, tls: true }), roundTrip: RTT_TCP }).verdict, 'relay');
});

test('verdict: failed when nothing reached the relay, with the ports to open', () => {
  assert.deepEqual(verdict({ servers: TURN_UDP_TCP, found: found({ host: true }), roundTrip: NO_RELAY }),
    { verdict: 'failed', advice: 'nothing-reached', ports: 'UDP 3478, TCP 3478' });
});

test('verdict: failed when the relay answers but carries nothing', () => {
  for (const f of [found({ host: true, udp: true, tcp: true }), found({ host: true, tcp: true }), found({ unknown: true })]) {
    assert.deepEqual(verdict({ servers: TURN_UDP_TCP, found: f, roundTrip: RTT_NO }),
      { verdict: 'failed', advice: 'relay-no-data', ports: '' });
  }
  // STUN answers (srflx) but TURN never does: not good enough with TURN configured.
  assert.equal(verdict({ servers: TURN_UDP_TCP, found: found({ host: true, srflx: true }), roundTrip: NO_RELAY }).verdict, 'failed');
});

test('verdict: no STUN/TURN at all is direct, saying only reachable networks connect', () => {
  assert.deepEqual(verdict({ servers: NONE, found: found({ host: true }), roundTrip: SKIPPED }),
    { verdict: 'direct', advice: 'no-servers', ports: '' });
});

test('verdict: STUN only', () => {
  assert.deepEqual(verdict({ servers: STUN_ONLY, found: found({ host: true, srflx: true }), roundTrip: SKIPPED }),
    { verdict: 'direct', advice: 'no-relay-configured', ports: '' });
  assert.deepEqual(verdict({ servers: STUN_ONLY, found: found({ host: true }), roundTrip: SKIPPED }),
    { verdict: 'failed', advice: 'stun-only-blocked', ports: '' });
});

test('verdict: a round trip that worked without any relay candidate seen is still direct (protocol unknown)', () => {
  // getStats may miss candidates; the round trip itself proves the relay.
  assert.equal(verdict({ servers: TURN_UDP_TCP, found: found({ unknown: true }), roundTrip: RTT_OK }).verdict, 'direct');
});

test('resultRows: host always, srflx when it matters, each configured or found relay transport', () => {
  const kinds = (/** @type {any} */ o) => resultRows(o).map((r) => `${r.kind}:${r.found ? 'y' : 'n'}`);
  // Loopback, all fine: no srflx line (the UDP relay shows UDP reached the server).
  assert.deepEqual(kinds({ servers: TURN_UDP_TCP, found: found({ host: true, udp: true, tcp: true }) }),
    ['host:y', 'relay-udp:y', 'relay-tcp:y']);
  // UDP blocked: the missing NAT and UDP relay lines say so.
  assert.deepEqual(kinds({ servers: TURN_UDP_TCP, found: found({ host: true, tcp: true }) }),
    ['host:y', 'srflx:n', 'relay-udp:n', 'relay-tcp:y']);
  assert.deepEqual(kinds({ servers: NONE, found: found({ host: true }) }), ['host:y']);
  assert.deepEqual(kinds({ servers: STUN_ONLY, found: found({ host: true, srflx: true }) }), ['host:y', 'srflx:y']);
  // A TLS relay found though only turn: URLs were named is still listed.
  assert.deepEqual(kinds({ servers: TURN_UDP_TCP, found: found({ tls: true, udp: true }) }),
    ['host:n', 'relay-udp:y', 'relay-tcp:n', 'relay-tls:y']);
});

// ------------------------------------------------ the flow, with a stand-in PC

/**
 * A scripted RTCPeerConnection. SCRIPT.candidates(config) gives the
 * candidates a connection gathers (RTCIceCandidate-like objects), `stats`
 * what its getStats lists besides them, `never` keeps gathering open
 * forever; SCRIPT.link: 'echo' connects two relay-only connections and
 * carries data, 'silent' connects but drops data, 'none' never connects,
 * 'fail' goes to iceConnectionState failed.
 * @param {{candidates:(cfg:any)=>any[], stats?:(cfg:any)=>any[], never?:boolean, link?:'echo'|'silent'|'none'|'fail'}} script
 */
function fakePC(script) {
  const made = [];
  class Channel extends EventTarget {
    /** @type {Channel | null} */ peer = null;
    /** @param {string} label */
    constructor(label) {
      super();
      this.label = label;
      this.readyState = 'connecting';
    }
    /** @param {string} data */
    send(data) {
      if (this.readyState !== 'open') throw new Error('InvalidStateError');
      const peer = this.peer;
      if (script.link === 'silent' || !peer) return;
      setTimeout(() => peer.dispatchEvent(Object.assign(new Event('message'), { data })), 1);
    }
  }
  class PC extends EventTarget {
    /** @param {any} config */
    constructor(config) {
      super();
      if (config.iceServers.some((/** @type {any} */ s) => s.urls === 'turn:broken')) throw new DOMException('bad', 'SyntaxError');
      this.config = config;
      this.iceGatheringState = 'new';
      this.iceConnectionState = 'new';
      this.closed = false;
      /** @type {Channel[]} */ this.channels = [];
      this.remoteCandidates = 0;
      /** @type {PC | null} */ this.other = null;
      made.push(this);
    }
    /** @param {string} label */
    createDataChannel(label) {
      const c = new Channel(label);
      this.channels.push(c);
      return c;
    }
    async createOffer() { return { type: 'offer', sdp: 'o' }; }
    async createAnswer() { return { type: 'answer', sdp: 'a' }; }
    /** @param {any} d */
    async setLocalDescription(d) {
      this.localDescription = d;
      this.iceGatheringState = 'gathering';
      const list = script.candidates(this.config);
      setTimeout(() => {
        for (const c of list) this.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate: c }));
        if (script.never) return;
        this.iceGatheringState = 'complete';
        this.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate: null }));
        this.dispatchEvent(new Event('icegatheringstatechange'));
      }, 2);
    }
    /** @param {any} d */
    async setRemoteDescription(d) {
      this.remoteDescription = d;
      const other = made.find((p) => p !== this && p.localDescription === d);
      if (other) {
        this.other = other;
        other.other = this;
      }
      this.#maybeConnect();
    }
    async addIceCandidate() {
      this.remoteCandidates += 1;
      this.#maybeConnect();
    }
    #maybeConnect() {
      const o = this.other;
      if (!o || !this.remoteDescription || !o.remoteDescription || !this.remoteCandidates || !o.remoteCandidates) return;
      if (this.connected || o.connected) return;
      this.connected = o.connected = true;
      setTimeout(() => {
        if (script.link === 'fail') {
          for (const p of [this, o]) {
            p.iceConnectionState = 'failed';
            p.dispatchEvent(new Event('iceconnectionstatechange'));
          }
          return;
        }
        if (script.link !== 'echo' && script.link !== 'silent') return;
        const [offerer, answerer] = this.channels.length ? [this, o] : [o, this];
        const mine = offerer.channels[0];
        const theirs = new Channel(mine.label);
        mine.peer = theirs;
        theirs.peer = mine;
        mine.readyState = theirs.readyState = 'open';
        answerer.dispatchEvent(Object.assign(new Event('datachannel'), { channel: theirs }));
        mine.dispatchEvent(new Event('open'));
      }, 3);
    }
    async getStats() {
      const m = new Map();
      let i = 0;
      for (const s of script.stats?.(this.config) ?? []) m.set(`c${i++}`, { type: 'local-candidate', ...s });
      if (this.connected) {
        m.set('lc', { type: 'local-candidate', candidateType: 'relay', relayProtocol: 'tcp' });
        m.set('pair', { type: 'candidate-pair', localCandidateId: 'lc', nominated: true, state: 'succeeded' });
        m.set('t', { type: 'transport', selectedCandidatePairId: 'pair' });
      }
      return m;
    }
    close() { this.closed = true; }
  }
  return { PC: /** @type {any} */ (PC), made };
}

const ICE = [{ urls: ['turn:127.0.0.1:3478?transport=udp', 'turn:127.0.0.1:3478?transport=tcp'], username: 'u', credential: 'c' }];
const host = { type: 'host', candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host' };
/** @param {any} cfg */
const relayTcpOnly = (cfg) => (cfg.iceTransportPolicy === 'relay' ? [] : [host]).concat([
  { type: 'relay', relayProtocol: 'tcp', url: 'turn:127.0.0.1:3478?transport=tcp' },
]);

test('gather: candidates from the events and getStats; the connection is closed', async () => {
  const { PC, made } = fakePC({
    candidates: () => [host, { type: 'relay', relayProtocol: null, url: '' }],
    // getStats names the relay's protocol, so the unnamed one is not "unknown".
    stats: () => [{ candidateType: 'relay', relayProtocol: 'udp' }],
  });
  const f = await gather(PC, ICE, 1000);
  assert.deepEqual(f, found({ host: true, udp: true }));
  assert.equal(made.length, 1);
  assert.equal(made[0].closed, true);
  assert.equal(made[0].config.iceTransportPolicy, 'all');
  assert.equal(made[0].channels.length, 1, 'a data channel, so there is something to gather for');
});

test('gather: bounded when gathering never completes', async () => {
  const { PC } = fakePC({ candidates: () => [host], never: true });
  const t0 = Date.now();
  const f = await gather(PC, ICE, 150);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(f.host, true);
});

test('relayRoundTrip: two relay-only connections, pings echoed, median RTT and protocol', async () => {
  const { PC, made } = fakePC({ candidates: relayTcpOnly, link: 'echo' });
  let clock = 0;
  const r = await relayRoundTrip(PC, ICE, { timeoutMs: 2000, pings: 3, now: () => (clock += 5) });
  assert.deepEqual(r, { ok: true, rttMs: 5, protocol: 'tcp' });
  assert.equal(made.length, 2);
  for (const p of made) {
    assert.equal(p.config.iceTransportPolicy, 'relay');
    assert.equal(p.closed, true);
  }
});

test('relayRoundTrip: no relay candidate ends it at once', async () => {
  const { PC } = fakePC({ candidates: () => [], link: 'echo' });
  const t0 = Date.now();
  assert.deepEqual(await relayRoundTrip(PC, ICE, { timeoutMs: 5000 }), { ok: false, reason: 'no-relay' });
  assert.ok(Date.now() - t0 < 1000);
});

test('relayRoundTrip: failed ICE, silence and no connection', async () => {
  const fail = fakePC({ candidates: relayTcpOnly, link: 'fail' });
  assert.deepEqual(await relayRoundTrip(fail.PC, ICE, { timeoutMs: 5000 }), { ok: false, reason: 'no-connection' });
  const silent = fakePC({ candidates: relayTcpOnly, link: 'silent' });
  assert.deepEqual(await relayRoundTrip(silent.PC, ICE, { timeoutMs: 200 }), { ok: false, reason: 'no-answer' });
  const none = fakePC({ candidates: relayTcpOnly, link: 'none' });
  assert.deepEqual(await relayRoundTrip(none.PC, ICE, { timeoutMs: 200 }), { ok: false, reason: 'no-connection' });
});

test('runConnectionTest: UDP blocked, TCP relay carries data: relay', async () => {
  const { PC } = fakePC({ candidates: relayTcpOnly, link: 'echo' });
  const r = await runConnectionTest({ RTCPeerConnection: PC, iceServers: ICE, gatherMs: 500, roundTripMs: 2000 });
  assert.equal(r.verdict, 'relay');
  assert.equal(r.advice, 'udp-blocked');
  assert.equal(r.roundTrip.ok && r.roundTrip.protocol, 'tcp');
});

test('runConnectionTest: no TURN skips the round trip', async () => {
  const { PC, made } = fakePC({ candidates: () => [host], link: 'echo' });
  const r = await runConnectionTest({ RTCPeerConnection: PC, iceServers: [], gatherMs: 500 });
  assert.deepEqual([r.verdict, r.advice, r.roundTrip], ['direct', 'no-servers', { ok: false, reason: 'skipped' }]);
  assert.equal(made.length, 1);
});

test('runConnectionTest: ICE servers the browser refuses throw', async () => {
  const { PC } = fakePC({ candidates: () => [] });
  await assert.rejects(runConnectionTest({ RTCPeerConnection: PC, iceServers: [{ urls: 'turn:broken' }] }), /bad/);
});

test('fetchIceServers: the query has only what there is; 401 and bad answers', async () => {
  /** @type {string[]} */
  const asked = [];
  /** @param {number} status @param {string} body */
  const answer = (status, body) => async (/** @type {string} */ url) => {
    asked.push(url);
    return new Response(body, { status });
  };
  const ok = await fetchIceServers({ fetch: answer(200, '{"iceServers":[{"urls":"stun:h"}]}') });
  assert.deepEqual(ok, { ok: true, iceServers: [{ urls: 'stun:h' }] });
  await fetchIceServers({ room: 'team a', access: 'x.y.z', fetch: answer(200, '{"iceServers":[]}') });
  await fetchIceServers({ access: 'tok', fetch: answer(200, '{"iceServers":[]}') });
  assert.deepEqual(asked, ['/ice-servers', '/ice-servers?room=team+a&access=x.y.z', '/ice-servers?access=tok']);
  assert.deepEqual(await fetchIceServers({ fetch: answer(401, '{"error":"unauthorized"}') }), { ok: false, error: 'unauthorized' });
  for (const [status, body] of [[500, ''], [200, 'not json'], [200, '{"iceServers":{}}'], [200, 'null'], [200, 'x'.repeat(70_000)]]) {
    assert.deepEqual(await fetchIceServers({ fetch: answer(/** @type {number} */ (status), /** @type {string} */ (body)) }),
      { ok: false, error: 'unreachable' }, `${status} ${String(body).slice(0, 20)}`);
  }
  const down = async () => { throw new TypeError('Failed to fetch'); };
  assert.deepEqual(await fetchIceServers({ fetch: /** @type {any} */ (down) }), { ok: false, error: 'unreachable' });
});

test('relayRoundTrip: an abort (gathering found no relay) ends it as no-relay', async () => {
  const { PC, made } = fakePC({ candidates: relayTcpOnly, link: 'none' });
  const ctl = new AbortController();
  setTimeout(() => ctl.abort(), 20);
  const t0 = Date.now();
  assert.deepEqual(await relayRoundTrip(PC, ICE, { timeoutMs: 5000, signal: ctl.signal }), { ok: false, reason: 'no-relay' });
  assert.ok(Date.now() - t0 < 1000);
  assert.ok(made.every((p) => p.closed));
});

test('runConnectionTest: no relay gathered, the round trip does not wait out its bound', async () => {
  // The relay-only pair never finishes gathering; the policy-all one finds only a host.
  const { PC } = fakePC({ candidates: (cfg) => (cfg.iceTransportPolicy === 'relay' ? [] : [host]), never: true, link: 'none' });
  const t0 = Date.now();
  const r = await runConnectionTest({ RTCPeerConnection: PC, iceServers: ICE, gatherMs: 100, roundTripMs: 5000 });
  assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
  assert.deepEqual([r.verdict, r.advice, r.ports, r.roundTrip], ['failed', 'nothing-reached', 'UDP 3478, TCP 3478', { ok: false, reason: 'no-relay' }]);
});
