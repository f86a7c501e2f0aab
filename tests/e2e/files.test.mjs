// Files, peer to peer: an offer in everyone's chat ([data-file]), accepted
// or declined by each; the accepted copy ends as a download whose bytes are
// exactly the sent file; chat goes on meanwhile; either side can cancel; a
// sender leaving mid-transfer fails it with a reason; the page's limit
// (--max-file-size, told in /config.json) holds at both ends. The bytes
// never pass through the server (the server's own counters prove it).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { artifactsDir, join, newPage, until, useServerAndBrowser, waitForMedia } from './helpers.mjs';

const MiB = 1024 * 1024;

/**
 * Picks a file with these bytes in PAGE's file input (large ones go through
 * a file on disk: playwright passes at most 50 MB as a buffer).
 * @param {import('playwright-core').Page} page @param {string} name @param {Buffer} buffer
 */
async function sendFile(page, name, buffer) {
  const input = '#chat input[type=file][name=file]';
  if (buffer.length < 40 * MiB) {
    await page.setInputFiles(input, { name, mimeType: 'application/octet-stream', buffer });
    return;
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'huddle-files-'));
  const file = path.join(dir, name);
  await fs.writeFile(file, buffer);
  try {
    await page.setInputFiles(input, file);
  } finally {
    // The page holds the file by then; it is read when a recipient accepts.
    setTimeout(() => fs.rm(dir, { recursive: true, force: true }), 120_000).unref();
  }
}

/** The file entry for NAME at PAGE (the latest one with that name). */
const entry = (/** @type {string} */ name) => `#messages [data-file]:has(.file-name:text-is("${name}"))`;

/** @param {import('playwright-core').Page} page @param {string} name */
const stateOf = (page, name) => page.getAttribute(entry(name), 'data-state');

/** @param {import('playwright-core').Page} page */
const serverRelays = async (page) => {
  // Messages the server relayed between members: a file going through the
  // server would take hundreds of them.
  const r = await page.request.get(new URL('/metrics', page.url()).href);
  const text = await r.text();
  let sum = 0;
  for (const m of text.matchAll(/^huddle_relayed_messages_total\S* (\d+)/gm)) sum += Number(m[1]);
  return sum;
};

describe('files', () => {
  const env = useServerAndBrowser(['--max-file-size', '200MB']);

  it('go to everyone who accepts, byte for byte, while chat goes on', async () => {
    const [a, b, c] = await Promise.all([newPage(env.browser), newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'files');
    await join(b, env.server.url, 'ben', 'files');
    await join(c, env.server.url, 'cat', 'files');
    await waitForMedia(a, ['ben', 'cat']);
    await waitForMedia(b, ['ann', 'cat']);
    await waitForMedia(c, ['ann', 'ben']);
    assert.equal(await a.evaluate(() => /** @type {any} */ (window).huddle.room.files.maxFileSize), 200_000_000);

    const data = crypto.randomBytes(40 * MiB + 12345);
    const sha = crypto.createHash('sha256').update(data).digest('hex');
    const before = await serverRelays(a);
    await sendFile(a, 'holiday photos.zip', data);
    await a.waitForSelector(`${entry('holiday photos.zip')}[data-direction=out]`);
    for (const p of [b, c]) {
      await p.waitForSelector(`${entry('holiday photos.zip')}[data-direction=in][data-state=offered]`);
      const text = await p.textContent(entry('holiday photos.zip'));
      assert.match(text || '', /ann/);
      assert.match(text || '', /40\.0 MB|40 MB/, `the size is shown: ${text}`);
    }
    await c.click(`${entry('holiday photos.zip')} [data-action=decline-file]`);
    await b.click(`${entry('holiday photos.zip')} [data-action=accept-file]`);
    const started = Date.now();
    await b.waitForSelector(`${entry('holiday photos.zip')}[data-state=receiving]`);
    // Chat while the file travels.
    await b.fill('#chat input[name=text]', 'got it coming');
    await b.press('#chat input[name=text]', 'Enter');
    await a.waitForSelector('#messages [data-from=ben]:has-text("got it coming")', { timeout: 5000 });
    await b.screenshot({ path: path.join(artifactsDir(), 'call-file-transfer.png') });

    const link = `${entry('holiday photos.zip')} a[download]`;
    await b.waitForSelector(link, { timeout: 60_000 });
    const seconds = (Date.now() - started) / 1000;
    console.log(`# 40 MiB file, ann -> ben: ${(data.length / MiB / seconds).toFixed(1)} MiB/s (accept to download link)`);
    assert.equal(await b.getAttribute(link, 'download'), 'holiday photos.zip');
    const [download] = await Promise.all([b.waitForEvent('download'), b.click(link)]);
    const saved = await fs.readFile(/** @type {string} */ (await download.path()));
    assert.equal(saved.length, data.length);
    assert.equal(crypto.createHash('sha256').update(saved).digest('hex'), sha, 'the downloaded bytes are the sent file');

    // The sender sees who took it.
    const legs = `${entry('holiday photos.zip')} .file-legs`;
    await a.waitForSelector(`${legs} li[data-member=ben][data-state=done]`);
    await a.waitForSelector(`${legs} li[data-member=cat][data-state=declined]`);
    assert.equal(await stateOf(a, 'holiday photos.zip'), 'done');
    assert.equal(await stateOf(c, 'holiday photos.zip'), 'declined');
    assert.equal(await c.$(`${entry('holiday photos.zip')} a[download]`), null);
    const through = (await serverRelays(a)) - before;
    assert.ok(through < 20, `the server relayed ${through} messages during a 40 MiB transfer`);

    // Two at once, from two senders.
    const x = crypto.randomBytes(3 * MiB + 1);
    const y = crypto.randomBytes(2 * MiB + 7);
    await Promise.all([sendFile(a, 'x.bin', x), sendFile(c, 'y.bin', y)]);
    await b.waitForSelector(`${entry('x.bin')}[data-state=offered]`);
    await b.waitForSelector(`${entry('y.bin')}[data-state=offered]`);
    await b.click(`${entry('x.bin')} [data-action=accept-file]`);
    await b.click(`${entry('y.bin')} [data-action=accept-file]`);
    for (const [name, bytes] of /** @type {[string, Buffer][]} */ ([['x.bin', x], ['y.bin', y]])) {
      const l = `${entry(name)} a[download]`;
      await b.waitForSelector(l);
      const [d] = await Promise.all([b.waitForEvent('download'), b.click(l)]);
      assert.ok((await fs.readFile(/** @type {string} */ (await d.path()))).equals(bytes), `${name} arrives whole`);
    }
  });

  it('can be cancelled by either side, and fail with a reason when the sender leaves', async () => {
    const [a, b] = await Promise.all([newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'files-cancel');
    await join(b, env.server.url, 'ben', 'files-cancel');
    await waitForMedia(b, ['ann']);
    const big = crypto.randomBytes(150 * MiB);

    // The recipient cancels.
    await sendFile(a, 'one.iso', big);
    await b.click(`${entry('one.iso')}[data-state=offered] [data-action=accept-file]`);
    await until(() => b.$eval(`${entry('one.iso')} progress`, (p) => /** @type {HTMLProgressElement} */ (p).value > 0), { what: 'bytes arriving' });
    await b.click(`${entry('one.iso')} [data-action=cancel-file]`);
    await b.waitForSelector(`${entry('one.iso')}[data-state=cancelled]`);
    await a.waitForSelector(`${entry('one.iso')} .file-legs li[data-member=ben][data-state=cancelled]`, { timeout: 3000 });
    assert.match((await b.textContent(`${entry('one.iso')} .file-status`)) || '', /cancelled/i);

    // The sender cancels.
    await sendFile(a, 'two.iso', big);
    await b.click(`${entry('two.iso')}[data-state=offered] [data-action=accept-file]`);
    await until(() => b.$eval(`${entry('two.iso')} progress`, (p) => /** @type {HTMLProgressElement} */ (p).value > 0), { what: 'bytes arriving' });
    await a.click(`${entry('two.iso')} [data-action=cancel-file]`);
    await b.waitForSelector(`${entry('two.iso')}[data-state=cancelled]`, { timeout: 3000 });
    assert.match((await b.textContent(`${entry('two.iso')} .file-status`)) || '', /ann\u2069? cancelled/);

    // The sender leaves mid-transfer.
    await sendFile(a, 'three.iso', big);
    await b.click(`${entry('three.iso')}[data-state=offered] [data-action=accept-file]`);
    await until(() => b.$eval(`${entry('three.iso')} progress`, (p) => /** @type {HTMLProgressElement} */ (p).value > 0), { what: 'bytes arriving' });
    await a.close();
    await b.waitForSelector(`${entry('three.iso')}[data-state=failed]`, { timeout: 5000 });
    assert.match((await b.textContent(`${entry('three.iso')} .file-status`)) || '', /ann/);
    assert.equal(await b.$(`${entry('three.iso')} a[download]`), null);
  });

  it('keeps to the page limit at both ends', async () => {
    const [a, b] = await Promise.all([newPage(env.browser), newPage(env.browser)]);
    await join(a, env.server.url, 'ann', 'files-limit');
    await join(b, env.server.url, 'ben', 'files-limit');
    await waitForMedia(b, ['ann']);
    // The page refuses to send above the limit …
    await sendFile(a, 'huge.bin', Buffer.alloc(200_000_001));
    await a.waitForSelector('#toast:not([hidden])');
    assert.match((await a.textContent('#toast')) || '', /huge\.bin/);
    assert.equal(await a.$(entry('huge.bin')), null);
    // … and one that ignores it (a modified client) is refused by the recipient.
    await a.evaluate(() => {
      const files = /** @type {any} */ (window).huddle.room.files;
      files.maxFileSize = 1e12;
      files.offer(new File([new Uint8Array(8)], 'liar.bin')); // a small file …
    });
    await b.waitForSelector(`${entry('liar.bin')}`);
    await a.evaluate(() => {
      // … and an offer that says it is huge, straight on the data channel.
      const link = /** @type {any} */ (window).huddle.room.members.get('ben').link;
      link.send({ type: 'file-offer', id: 'bigbigbig', name: 'claims-huge.bin', size: 300_000_000 });
    });
    await b.waitForSelector(`${entry('claims-huge.bin')}[data-state=declined]`);
    assert.equal(await b.$(`${entry('claims-huge.bin')} [data-action=accept-file]`), null);
    assert.match((await b.textContent(`${entry('claims-huge.bin')} .file-status`)) || '', /200 MB|191 MB|190\.7 MB/);
  });
});
