// @ts-check
/**
 * conntest.js — the join page's "Test connection", without the DOM.
 *
 * Given `RTCPeerConnection` and the server's ICE servers (`GET
 * /ice-servers`), `runConnectionTest` does two things at once:
 *
 * 1. **Gathering.** One connection with policy `all` and a data channel
 *    makes an offer and collects its candidates (bounded by `gatherMs`, or
 *    until gathering completes): host ("direct on this network"), srflx
 *    ("through NAT", from STUN) and relay (through TURN) with the protocol
 *    the browser used to reach the relay (`relayProtocol`: udp, tcp, tls),
 *    read from the candidates and from getStats' `local-candidate`s.
 * 2. **A relay round trip**, where TURN is configured: two connections in
 *    this page, both `iceTransportPolicy: 'relay'`, connected to each other
 *    through the relay, and `PINGS` pings on a data channel; the median
 *    round trip is the relay RTT.
 *
 * `verdict` (pure) turns what came back into `direct`, `relay` or `failed`
 * with advice codes that ui.js words (`web/i18n`). Everything the verdict
 * needs is a plain object, so it is unit-tested under Node
 * (tests/js/conntest.test.mjs). Any number of STUN/TURN URLs, of any
 * transport, are handled alike.
 */

/** How long gathering may take before the test goes on with what came (ms). */
export const GATHER_MS = 8000;
/** How long the relay round trip may take, connection included (ms). */
export const ROUND_TRIP_MS = 10000;
/** Pings sent over the relayed data channel; the RTT is their median. */
export const PINGS = 5;

/** @typedef {'udp'|'tcp'|'tls'} Transport */

/**
 * One STUN or TURN URL, parsed.
 * @typedef {{scheme:'stun'|'stuns'|'turn'|'turns', host:string, port:number, transport:Transport, url:string}} IceUrl
 */

/**
 * Parses a STUN/TURN URL (RFC 7064, RFC 7065): `stun:HOST[:PORT]`,
 * `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:…` (TLS, default port
 * 5349), IPv6 hosts in brackets. A `turn:` URL without a transport is UDP,
 * as browsers take it. Null for anything else.
 * @param {unknown} url
 * @returns {IceUrl | null}
 */
export function parseIceUrl(url) {
  if (typeof url !== 'string') return null;
  const m = /^(stuns?|turns?):(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/i.exec(url.trim());
  if (!m) return null;
  const scheme = /** @type {IceUrl['scheme']} */ (m[1].toLowerCase());
  const secure = scheme.endsWith('s');
  const port = m[3] ? Number(m[3]) : secure ? 5349 : 3478;
  if (!(port > 0 && port < 65536)) return null;
  const asked = m[4] ? /** @type {'udp'|'tcp'} */ (m[4].toLowerCase()) : null;
  /** @type {Transport} */
  let transport;
  if (secure) transport = 'tls';
  else if (scheme === 'turn') transport = asked ?? 'udp';
  else transport = 'udp';
  return { scheme, host: m[2], port, transport, url: url.trim() };
}

/**
 * What the ICE servers offer: the STUN URLs and the TURN URLs (each with
 * its transport), parsed; unparsable URLs are counted, not dropped silently.
 * @typedef {{stun: IceUrl[], turn: IceUrl[], unknown: number}} Servers
 * @param {unknown} iceServers an array of RTCIceServer objects
 * @returns {Servers}
 */
export function describeServers(iceServers) {
  /** @type {Servers} */
  const out = { stun: [], turn: [], unknown: 0 };
  if (!Array.isArray(iceServers)) return out;
  for (const server of iceServers) {
    const urls = server && typeof server === 'object' ? /** @type {any} */ (server).urls : undefined;
    for (const url of Array.isArray(urls) ? urls : [urls]) {
      const u = parseIceUrl(url);
      if (!u) out.unknown += 1;
      else if (u.scheme.startsWith('turn')) out.turn.push(u);
      else out.stun.push(u);
    }
  }
  return out;
}

/**
 * The kinds of local candidate that came back.
 * @typedef {{host:boolean, srflx:boolean, relay:{udp:boolean, tcp:boolean, tls:boolean, unknown:boolean}}} Found
 */

/** @returns {Found} nothing found yet */
export function emptyFound() {
  return { host: false, srflx: false, relay: { udp: false, tcp: false, tls: false, unknown: false } };
}

/**
 * A candidate as getStats' `local-candidate` or RTCIceCandidate give it.
 * (Chromium's RTCIceCandidate has `relayProtocol` for TCP relays only, but
 * `url`, the server it came from; its getStats names every protocol.)
 * @typedef {{type?:string|null, candidateType?:string, relayProtocol?:string|null, url?:string|null, candidate?:string}} CandidateLike
 */

/**
 * The type of a candidate from its SDP line (`candidate:… typ relay …`).
 * @param {string} line
 * @returns {string}
 */
export function typeFromLine(line) {
  return /\styp\s+(host|srflx|prflx|relay)\b/.exec(String(line))?.[1] ?? '';
}

/**
 * Adds one candidate to FOUND (in place) and returns FOUND.
 * @param {Found} found
 * @param {CandidateLike} c
 * @returns {Found}
 */
export function addCandidate(found, c) {
  const type = c.candidateType || c.type || typeFromLine(c.candidate || '');
  if (type === 'host') found.host = true;
  else if (type === 'srflx') found.srflx = true;
  else if (type === 'relay') {
    const p = String(c.relayProtocol || parseIceUrl(c.url)?.transport || '').toLowerCase();
    if (p === 'udp' || p === 'tcp' || p === 'tls') found.relay[p] = true;
    else found.relay.unknown = true;
  }
  return found;
}

/** @param {Found} found */
function anyRelay(found) {
  return found.relay.udp || found.relay.tcp || found.relay.tls || found.relay.unknown;
}

/**
 * The relay round trip: `ok` with the median RTT in ms and the protocol to
 * the relay of the pair used; or not, with why (`no-relay`: no relay
 * candidate to try; `no-connection`: the two connections never met;
 * `no-answer`: connected, but the pings came not back; `skipped`: no TURN).
 * @typedef {{ok:true, rttMs:number, protocol:string} | {ok:false, reason:'no-relay'|'no-connection'|'no-answer'|'skipped'|'error'}} RoundTrip
 */

/**
 * What the test saw.
 * @typedef {{servers:Servers, found:Found, roundTrip:RoundTrip}} Outcome
 */

/**
 * Advice for the person, as a code ui.js words:
 * - `all-good`: UDP reaches the server and the relay carries data;
 * - `no-servers`: no STUN or TURN at all: only reachable networks connect;
 * - `no-relay-configured`: STUN only; strict networks will not connect;
 * - `udp-blocked`: only TCP/TLS reaches the relay (calls may lag);
 * - `nothing-reached`: no relay (or STUN) answered: open PORTS, run doctor;
 * - `relay-no-data`: the relay answered but carried nothing (its relay
 *   port range is likely closed);
 * - `stun-only-blocked`: STUN only, and it never answered.
 * `ports` (for `nothing-reached`): what to open, as "UDP 3478, TCP 3478".
 * @typedef {{verdict:'direct'|'relay'|'failed', advice:string, ports:string}} Verdict
 */

/**
 * What to open in a firewall for SERVERS' TURN (else STUN) URLs: each
 * transport and port once, e.g. "UDP 3478, TCP 3478, TLS 443".
 * @param {Servers} servers
 * @returns {string}
 */
export function portsToOpen(servers) {
  const list = servers.turn.length ? servers.turn : servers.stun;
  const seen = new Set();
  for (const u of list) seen.add(`${u.transport.toUpperCase()} ${u.port}`);
  return [...seen].join(', ');
}

/**
 * The verdict (see the module doc and docs/web-client.md):
 * - `direct`: UDP reaches the server (a srflx candidate, or a relay
 *   candidate over UDP: on loopback Chromium drops a srflx that equals a
 *   host candidate, so the UDP relay candidate is the reliable sign) and,
 *   where TURN is configured, the relay round trip worked; also when the
 *   server has no STUN/TURN at all (advice `no-servers`);
 * - `relay`: UDP does not reach the server, but a TCP/TLS relay does and
 *   the round trip worked;
 * - `failed`: anything else.
 * @param {Outcome} o
 * @returns {Verdict}
 */
export function verdict(o) {
  const { servers, found, roundTrip } = o;
  const ports = portsToOpen(servers);
  /** @param {Verdict['verdict']} v @param {string} advice */
  const say = (v, advice) => ({ verdict: v, advice, ports: advice === 'nothing-reached' ? ports : '' });
  if (!servers.stun.length && !servers.turn.length) return say('direct', 'no-servers');
  const udp = found.srflx || found.relay.udp;
  if (!servers.turn.length) return udp ? say('direct', 'no-relay-configured') : say('failed', 'stun-only-blocked');
  const tcp = found.relay.tcp || found.relay.tls;
  if (roundTrip.ok) {
    if (udp || found.relay.unknown) return say('direct', 'all-good');
    if (tcp) return say('relay', 'udp-blocked');
  }
  if (anyRelay(found)) return say('failed', 'relay-no-data');
  return say('failed', 'nothing-reached');
}

/**
 * A line per kind of path, for the result list: host always; srflx when
 * found, or when nothing over UDP came back although STUN/TURN over UDP is
 * configured; each relay transport that is configured or found.
 * @param {Outcome} o
 * @returns {{kind:'host'|'srflx'|'relay-udp'|'relay-tcp'|'relay-tls', found:boolean}[]}
 */
export function resultRows(o) {
  const { servers, found } = o;
  /** @type {ReturnType<typeof resultRows>} */
  const rows = [{ kind: 'host', found: found.host }];
  const udpServer = servers.stun.some((u) => u.transport === 'udp') || servers.turn.some((u) => u.transport === 'udp');
  if (found.srflx || (udpServer && !found.relay.udp)) rows.push({ kind: 'srflx', found: found.srflx });
  for (const t of /** @type {Transport[]} */ (['udp', 'tcp', 'tls'])) {
    const configured = servers.turn.some((u) => u.transport === t);
    if (configured || found.relay[t]) rows.push({ kind: `relay-${t}`, found: found.relay[t] });
  }
  return rows;
}

/**
 * @param {number[]} xs
 * @returns {number}
 */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * PROMISE, or what FALLBACK returns when PROMISE takes longer than MS.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {() => T} fallback
 * @returns {Promise<T>}
 */
function within(promise, ms, fallback) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(fallback()), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, late])).finally(() => clearTimeout(timer));
}

/**
 * The local candidates of PC as getStats reports them (Chromium lists
 * every gathered one, with `relayProtocol` for relays).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<CandidateLike[]>}
 */
async function statsCandidates(pc) {
  try {
    /** @type {CandidateLike[]} */
    const out = [];
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'local-candidate') out.push(s);
    });
    return out;
  } catch {
    return [];
  }
}

/**
 * Gathers with policy `all` and returns the kinds found.
 * @param {typeof RTCPeerConnection} PC
 * @param {RTCIceServer[]} iceServers
 * @param {number} gatherMs
 * @returns {Promise<Found>}
 */
export async function gather(PC, iceServers, gatherMs = GATHER_MS) {
  const found = emptyFound();
  const pc = new PC({ iceServers, iceTransportPolicy: 'all' });
  try {
    pc.createDataChannel('probe');
    /** @type {CandidateLike[]} */
    const seen = [];
    const done = new Promise((resolve) => {
      pc.addEventListener('icecandidate', (e) => {
        if (e.candidate) seen.push(e.candidate);
        else resolve(undefined);
      });
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve(undefined);
      });
    });
    await pc.setLocalDescription(await pc.createOffer());
    await within(done, gatherMs, () => undefined);
    const stats = await statsCandidates(pc);
    const statsNameRelays = stats.some((c) => c.candidateType === 'relay' && c.relayProtocol);
    for (const c of seen) {
      // A relay candidate that does not say its protocol is left to
      // getStats, which names it.
      const relay = (c.type || typeFromLine(c.candidate || '')) === 'relay';
      if (relay && !c.relayProtocol && !parseIceUrl(c.url) && statsNameRelays) continue;
      addCandidate(found, c);
    }
    for (const c of stats) addCandidate(found, c);
    return found;
  } finally {
    pc.close();
  }
}

/**
 * The protocol to the relay of PC's selected candidate pair ('' if none).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<string>}
 */
async function relayProtocolInUse(pc) {
  try {
    const report = await pc.getStats();
    /** @type {any} */
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
      });
    }
    const local = pair ? report.get(pair.localCandidateId) : null;
    return local?.relayProtocol ? String(local.relayProtocol) : '';
  } catch {
    return '';
  }
}

/**
 * Two relay-only connections in this page, connected to each other; the
 * median round trip of PINGS data-channel pings.
 * @param {typeof RTCPeerConnection} PC
 * @param {RTCIceServer[]} iceServers
 * @param {{timeoutMs?:number, pings?:number, now?:() => number, signal?:AbortSignal}} [opts]
 *   signal: gives up (as `no-relay`) when aborted, e.g. once gathering
 *   found no relay candidate at all
 * @returns {Promise<RoundTrip>}
 */
export async function relayRoundTrip(PC, iceServers, opts = {}) {
  const { timeoutMs = ROUND_TRIP_MS, pings = PINGS, now = () => performance.now(), signal } = opts;
  const a = new PC({ iceServers, iceTransportPolicy: 'relay' });
  const b = new PC({ iceServers, iceTransportPolicy: 'relay' });
  /** @type {(r: RoundTrip) => void} */
  let finish = () => {};
  const result = new Promise((resolve) => {
    finish = resolve;
  });
  let connected = false;
  signal?.addEventListener('abort', () => finish({ ok: false, reason: 'no-relay' }), { once: true });
  if (signal?.aborted) finish({ ok: false, reason: 'no-relay' });
  try {
    // Each side's candidates go straight to the other; a side whose
    // gathering ends with no candidate at all cannot connect.
    for (const [from, to] of [[a, b], [b, a]]) {
      let count = 0;
      from.addEventListener('icecandidate', (e) => {
        if (e.candidate) {
          count += 1;
          to.addIceCandidate(e.candidate).catch(() => {});
        } else if (count === 0) finish({ ok: false, reason: 'no-relay' });
      });
      from.addEventListener('iceconnectionstatechange', () => {
        if (from.iceConnectionState === 'failed') finish({ ok: false, reason: 'no-connection' });
      });
    }
    const channel = a.createDataChannel('ping');
    b.addEventListener('datachannel', (e) => {
      e.channel.addEventListener('message', (m) => e.channel.send(m.data));
    });
    channel.addEventListener('open', async () => {
      connected = true;
      /** @type {number[]} */
      const rtts = [];
      try {
        for (let i = 0; i < pings; i += 1) {
          const t0 = now();
          const back = new Promise((resolve) => channel.addEventListener('message', resolve, { once: true }));
          channel.send(`ping ${i}`);
          await back;
          rtts.push(now() - t0);
        }
        finish({ ok: true, rttMs: median(rtts), protocol: await relayProtocolInUse(a) });
      } catch {
        finish({ ok: false, reason: 'no-answer' }); // closed meanwhile
      }
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (a.localDescription));
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (b.localDescription));
    return await within(result, timeoutMs, () => /** @type {RoundTrip} */ ({ ok: false, reason: connected ? 'no-answer' : 'no-connection' }));
  } catch {
    return { ok: false, reason: 'error' };
  } finally {
    a.close();
    b.close();
  }
}

/**
 * Runs the whole test: gathering and (where TURN is configured) the relay
 * round trip, side by side. Throws only when the browser refuses the ICE
 * servers (`new RTCPeerConnection` throws on a malformed one).
 * @param {{RTCPeerConnection: typeof RTCPeerConnection, iceServers: RTCIceServer[],
 *   gatherMs?:number, roundTripMs?:number}} opts
 * @returns {Promise<Outcome & Verdict>}
 */
export async function runConnectionTest({ RTCPeerConnection: PC, iceServers, gatherMs = GATHER_MS, roundTripMs = ROUND_TRIP_MS }) {
  const servers = describeServers(iceServers);
  // Gathering that found no relay at all ends the round trip's wait too.
  const noRelay = new AbortController();
  const gathered = gather(PC, iceServers, gatherMs).then((found) => {
    if (!anyRelay(found)) noRelay.abort();
    return found;
  });
  const [found, roundTrip] = await Promise.all([
    gathered,
    servers.turn.length
      ? relayRoundTrip(PC, iceServers, { timeoutMs: roundTripMs, signal: noRelay.signal })
      : Promise.resolve(/** @type {RoundTrip} */ ({ ok: false, reason: 'skipped' })),
  ]);
  const outcome = { servers, found, roundTrip };
  return { ...outcome, ...verdict(outcome) };
}

/** The most of `GET /ice-servers` the page reads (bytes of JSON). */
const MAX_ICE_JSON = 64 * 1024;

/**
 * `GET /ice-servers[?room=ROOM&access=TOKEN]` (only the parts there are):
 * the ICE servers with credentials minted for this test. `unauthorized`
 * when the server wants an invitation (401); `unreachable` when there is
 * no usable answer.
 * @param {{room?:string, access?:string, fetch?:typeof fetch}} [opts]
 * @returns {Promise<{ok:true, iceServers:RTCIceServer[]} | {ok:false, error:'unauthorized'|'unreachable'}>}
 */
export async function fetchIceServers({ room = '', access = '', fetch: get = globalThis.fetch } = {}) {
  const q = new URLSearchParams();
  if (room) q.set('room', room);
  if (access) q.set('access', access);
  const qs = q.toString();
  try {
    const r = await get(`/ice-servers${qs ? `?${qs}` : ''}`, { cache: 'no-store' });
    if (r.status === 401) return { ok: false, error: 'unauthorized' };
    if (!r.ok) return { ok: false, error: 'unreachable' };
    const text = await r.text();
    if (text.length > MAX_ICE_JSON) return { ok: false, error: 'unreachable' };
    const body = JSON.parse(text);
    if (!body || !Array.isArray(body.iceServers)) return { ok: false, error: 'unreachable' };
    return { ok: true, iceServers: body.iceServers };
  } catch {
    return { ok: false, error: 'unreachable' };
  }
}
