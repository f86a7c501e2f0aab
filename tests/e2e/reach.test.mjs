// Reachable from anywhere: a call over wss:// with a self-signed
// certificate; relay-only calls (?relay=1) through the embedded TURN server
// and through Debian's coturn with the same secret; and two people in
// separate network namespaces that cannot reach each other, who connect
// through TURN and do not connect without it, and, behind a firewall that
// lets only TCP to the HTTPS port out, through TURN over TLS on that port
// (the browsers and coturn's turnutils_uclient alike).
//
// Network rule: everything stays on loopback or in namespaces made here.

import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  COTURN_RELAY_PORTS, closeBrowser, join, launchBrowser, makeHomes, newPage, startCoturn,
  startServer, stats, waitForGrowth, waitForMedia, T,
} from './helpers.mjs';

/** Things to stop after each test, last first, even when it fails. */
let cleanups = [];
afterEach(async () => {
  for (const f of cleanups.reverse()) await f();
  cleanups = [];
});

/** @param {() => unknown} f */
const onCleanup = (f) => cleanups.push(async () => { try { await f(); } catch { /* best effort */ } });

/**
 * Two pages in ROOM at BASE (with QUERY on the room URL), waiting until each
 * shows the other's video; returns the pages.
 * @param {import('playwright-core').Browser} browser
 * @param {string} base
 * @param {string} room
 * @param {string} [query]
 */
async function pair(browser, base, room, query = '') {
  const pages = [];
  for (const name of ['ann', 'bob']) {
    const page = await newPage(browser);
    onCleanup(() => page.context().close());
    await page.goto(`${base}/r/${room}${query}`);
    await join(page, base, name, room);
    pages.push(page);
  }
  await waitForMedia(pages[0], ['bob']);
  await waitForMedia(pages[1], ['ann']);
  return pages;
}

/**
 * Asserts both pages send through a relay candidate of theirs, on a relay
 * port in [LOW, HIGH], and decode the other's video.
 * @param {import('playwright-core').Page[]} pages
 * @param {number[]} ports [low, high]: whose relay it is
 * @param {() => string} [why] more to say when the port is wrong
 */
async function assertRelayed([ann, bob], [low, high], why = () => '') {
  for (const [page, other] of [[ann, 'bob'], [bob, 'ann']]) {
    const s = (await stats(/** @type {any} */ (page)))[other];
    assert.equal(s.connectionState, 'connected');
    assert.equal(s.path?.local, 'relay', `${other}'s link on the other page: ${JSON.stringify(s.path)}`);
    const port = s.path.localPort;
    assert.ok(port >= low && port <= high, `relay port ${port} not in ${low}-${high}${why()}`);
    await waitForGrowth(/** @type {any} */ (page), other, (m) => m.video.framesDecoded, 10);
  }
}

describe('reachable from anywhere', () => {
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await closeBrowser(browser);
  });

  it('a call over wss:// with the self-signed certificate', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-tls-'));
    onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
    const server = await startServer(['--tls-self-signed', '--data-dir', dataDir]);
    onCleanup(() => server.stop());
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    // Trust exactly this certificate, as a person does by accepting it once.
    const pem = readFileSync(path.join(dataDir, 'self-signed-cert.pem'));
    const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
    const pin = createHash('sha256').update(spki).digest('base64');
    const tlsBrowser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${pin}`] });
    onCleanup(() => closeBrowser(tlsBrowser));
    const [ann] = await pair(tlsBrowser, server.url, 'secure');
    assert.equal(await ann.evaluate(() => location.protocol), 'https:');
    assert.match(
      await ann.evaluate(() => /** @type {any} */ (window).huddle.client.url),
      /^wss:\/\/127\.0\.0\.1:\d+\/ws$/,
    );
    // Without the pin the certificate is refused: the browser really checks.
    const refused = await newPage(browser);
    onCleanup(() => refused.context().close());
    await assert.rejects(refused.goto(`${server.url}/`), /ERR_CERT_AUTHORITY_INVALID/);
  });

  it('relay only (?relay=1): the call goes through the embedded TURN server', async () => {
    const server = await startServer(['--turn-listen', '127.0.0.1:0', '--turn-relay-ports', '41000-41099',
      // Both browsers are on loopback, which the relay refuses by default.
      '--turn-allowed-peer-ip', '127.0.0.0/8']);
    onCleanup(() => server.stop());
    const pages = await pair(browser, server.url, 'relayed', '?relay=1');
    // The relayed addresses are the embedded server's (--turn-relay-ports).
    await assertRelayed(pages, [41000, 41099]);
    // The page keeps ?relay=1 on its URL after joining.
    assert.match(pages[0].url(), /\/r\/relayed\?relay=1$/);
  });

  it('relay only through coturn as an external TURN server with the same secret', async () => {
    const secret = 'shared-with-coturn';
    const coturn = await startCoturn(secret);
    onCleanup(() => coturn.stop());
    const port = coturn.port;
    const server = await startServer([
      '--turn-url', `turn:127.0.0.1:${port}?transport=udp`, '--turn-secret', secret,
    ]);
    onCleanup(() => server.stop());
    const pages = await pair(browser, server.url, 'coturned', '?relay=1');
    // The relayed addresses are coturn's (its relay port range).
    await assertRelayed(pages, COTURN_RELAY_PORTS, () => `; coturn's log:\n${coturn.log()}`);
  });
});

describe('behind separate networks', () => {
  /** @type {ReturnType<typeof makeHomes>} */
  let homes;

  before(() => {
    // The test's namespace plays the server and does not forward: the
    // homes reach its addresses but not each other.
    homes = makeHomes();
  });
  after(() => homes?.remove());

  /**
   * Starts a server on every address with FLAGS, and one browser in each
   * home; ann (home A) and bob (home B) join ROOM.
   * @param {string[]} flags
   * @param {string} room
   */
  async function call(flags, room) {
    const server = await startServer(['--listen', '0.0.0.0:0', ...flags]);
    onCleanup(() => server.stop());
    const port = server.port;
    const pages = [];
    for (const [i, name] of ['ann', 'bob'].entries()) {
      const base = `http://${homes.homes[i].net}.1:${port}`;
      const b = await launchBrowser({
        executablePath: homes.wrappers[i],
        // Plain http on a LAN address: let this origin use the camera.
        args: [`--unsafely-treat-insecure-origin-as-secure=${base}`],
      });
      onCleanup(() => closeBrowser(b));
      const page = await newPage(b);
      await page.goto(`${base}/r/${room}`);
      await join(page, base, name, room);
      pages.push(page);
    }
    return pages;
  }

  /**
   * Whether a TCP connection from namespace NS to HOST:PORT succeeds within 2 s.
   * @param {string} ns
   * @param {string} host
   * @param {number} port
   */
  function canReach(ns, host, port) {
    const probe = `const s=require('net').connect(${port},'${host}',()=>process.exit(0));` +
      `s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),2000);`;
    try {
      execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', probe], { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  }

  it('the homes reach the server but not each other', async () => {
    const [a, b] = homes.homes;
    // Listeners on the server side (every address) and inside home B.
    const here = net.createServer((c) => c.end());
    await new Promise((r) => here.listen(0, '0.0.0.0', () => r(undefined)));
    onCleanup(() => here.close());
    const port = /** @type {net.AddressInfo} */ (here.address()).port;
    const inB = spawn('ip', ['netns', 'exec', b.ns, process.execPath, '-e',
      `require('net').createServer((c)=>c.end()).listen(${port},'${b.net}.2',()=>console.log('up'))`]);
    onCleanup(() => inB.kill('SIGKILL'));
    await new Promise((resolve, reject) => {
      inB.stdout.once('data', resolve);
      inB.once('exit', reject);
    });
    assert.ok(canReach(a.ns, `${a.net}.1`, port), 'A reaches the server');
    assert.ok(canReach(a.ns, `${b.net}.1`, port), "A reaches the server's other address");
    assert.ok(canReach(b.ns, `${b.net}.2`, port), 'B reaches its own listener');
    assert.ok(!canReach(a.ns, `${b.net}.2`, port), 'A does not reach B');
  });

  it('with the embedded TURN server the call connects through a relay', async () => {
    const pages = await call(['--turn-listen', '0.0.0.0:0', '--turn-public-ip', `${homes.homes[0].net}.1`,
      // The homes are private ranges, which the relay refuses by default.
      '--turn-allowed-peer-ip', '10.77.0.0/16'], 'homes');
    await waitForMedia(pages[0], ['bob']);
    await waitForMedia(pages[1], ['ann']);
    // One end of the path is a TURN relay. The side that owns it reports
    // 'relay' (or 'prflx' with a relay protocol, when the check came before
    // the candidate); the other side may see only a peer-reflexive address.
    const paths = [(await stats(pages[0])).bob.path, (await stats(pages[1])).ann.path];
    const relayed = paths.some((p) => p && (p.local === 'relay' || p.relayProtocol !== ''));
    assert.ok(relayed, `a relay on the path: ${JSON.stringify(paths)}`);
  });

  /**
   * Lets home NS send nothing but TLS over TCP to PORT (and loopback): a
   * strict firewall that opens only the HTTPS port, and inspects it: a
   * segment that starts as a plain STUN message (the magic cookie at
   * payload bytes 4-7) is dropped, as a firewall that allows only TLS does.
   * Under TLS those bytes are ciphertext. Undone after the test.
   * @param {string} ns
   * @param {number} port
   */
  function onlyTlsTo(ns, port) {
    const rules = `table inet hudfw {\n  chain out {\n    type filter hook output priority 0; policy drop;\n` +
      `    oif "lo" accept\n    tcp dport ${port} @ih,32,32 0x2112a442 drop\n    tcp dport ${port} accept\n  }\n}\n`;
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
    onCleanup(() => execFileSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'hudfw']));
  }

  it('only TLS to the HTTPS port gets out: the relay runs over TLS on that port', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-oneport-'));
    onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
    const secret = 'one-port-secret';
    const server = await startServer(['--listen', '0.0.0.0:0', '--tls-self-signed', '--data-dir', dataDir,
      '--turn-listen', '0.0.0.0:0', '--turn-public-ip', `${homes.homes[0].net}.1`, '--turn-secret', secret,
      '--turn-allowed-peer-ip', '10.77.0.0/16']);
    onCleanup(() => server.stop());
    const port = server.port;
    for (const h of homes.homes) onlyTlsTo(h.ns, port);
    const [a] = homes.homes;
    // The firewall holds: the HTTPS port is open, the TURN port is not, and
    // plain TURN over TCP to the HTTPS port is stopped.
    assert.ok(canReach(a.ns, `${a.net}.1`, port), 'the HTTPS port is open');
    assert.ok(server.turnPort > 0, 'the TURN port is known');
    assert.ok(!canReach(a.ns, `${a.net}.1`, server.turnPort), 'the TURN port is closed');
    const plain = spawnSync('ip', ['netns', 'exec', a.ns, 'timeout', '8', 'turnutils_uclient', '-t', '-y', '-n', '3',
      '-W', secret, '-u', 'uclient', '-p', String(port), `${a.net}.1`], { encoding: 'utf8' });
    assert.doesNotMatch(plain.stdout + plain.stderr, /tot_recv_msgs=[1-9]/, 'plain TURN is blocked');
    const pem = readFileSync(path.join(dataDir, 'self-signed-cert.pem'));
    const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
    const pin = createHash('sha256').update(spki).digest('base64');
    // coturn's own client, over TLS to the HTTPS port, from behind the
    // firewall, while the pages load: client-to-client through the relay.
    const uclient = spawn('ip', ['netns', 'exec', a.ns, 'turnutils_uclient', '-t', '-S', '-y', '-n', '20',
      '-W', secret, '-u', 'uclient', '-p', String(port), `${a.net}.1`]);
    let uout = '';
    uclient.stdout.on('data', (d) => { uout += d; });
    uclient.stderr.on('data', (d) => { uout += d; });
    onCleanup(() => uclient.kill('SIGKILL'));
    const uclientDone = new Promise((resolve) => uclient.once('exit', (code) => resolve(code)));
    const pages = [];
    for (const [i, name] of ['ann', 'bob'].entries()) {
      const base = `https://${homes.homes[i].net}.1:${port}`;
      const b = await launchBrowser({
        executablePath: homes.wrappers[i],
        args: [`--ignore-certificate-errors-spki-list=${pin}`],
      });
      onCleanup(() => closeBrowser(b));
      const page = await newPage(b);
      await page.goto(`${base}/r/oneport?relay=1`);
      await join(page, base, name, 'oneport');
      pages.push(page);
    }
    await waitForMedia(pages[0], ['bob']);
    await waitForMedia(pages[1], ['ann']);
    for (const [page, other] of [[pages[0], 'bob'], [pages[1], 'ann']]) {
      const s = (await stats(/** @type {any} */ (page)))[other];
      assert.equal(s.path?.local, 'relay', JSON.stringify(s.path));
      assert.equal(s.path?.relayProtocol, 'tls', `relayed over TLS: ${JSON.stringify(s.path)}`);
      await waitForGrowth(/** @type {any} */ (page), other, (m) => m.video.framesDecoded, 10);
    }
    const code = await Promise.race([uclientDone, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    assert.equal(code, 0, `turnutils_uclient -S: ${uout}`);
    const m = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(uout);
    assert.ok(m && Number(m[2]) > 0, `messages came back through the relay: ${uout}`);
    assert.match(uout, /tls_connect: client session connected/);
  });

  it('without TURN the same call does not connect', async () => {
    const pages = await call([], 'no-turn');
    // Both see each other's tile (signaling works) …
    await pages[0].waitForSelector('#grid [data-peer="bob"]', { timeout: T.join });
    // … but media never flows: give ICE a fair while.
    await new Promise((r) => setTimeout(r, 15_000));
    for (const [page, other] of [[pages[0], 'bob'], [pages[1], 'ann']]) {
      const s = (await stats(/** @type {any} */ (page)))[other];
      assert.notEqual(s.connectionState, 'connected', `${other}: ${JSON.stringify(s)}`);
      assert.equal(s.video.framesDecoded, 0);
    }
  });
});
