// Connection info: each remote tile shows a call-quality indicator
// (good / weak / bad, from loss, round trip and frame rate) and, on click,
// the details from getStats: path, round trip, bitrate both ways, packet
// loss, codec, resolution and frame rate. The grading itself is pure.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, artifactsDir, join, newPage, tileOf, until, useServerAndBrowser, waitForMedia } from './helpers.mjs';

describe('connection quality', () => {
  it('grades loss, round trip and frame rate', async () => {
    const { grade } = await import(pathToFileURL(path.join(ROOT, 'web', 'js', 'quality.js')).href);
    assert.equal(grade({ loss: 0, rttMs: 20, fps: 30, video: true }), 'good');
    assert.equal(grade({ loss: null, rttMs: null, fps: null, video: true }), 'good', 'unknown is fine');
    assert.equal(grade({ loss: 0.05, rttMs: 20, fps: 30, video: true }), 'weak');
    assert.equal(grade({ loss: 0, rttMs: 300, fps: 30, video: true }), 'weak');
    assert.equal(grade({ loss: 0, rttMs: 20, fps: 10, video: true }), 'weak');
    assert.equal(grade({ loss: 0, rttMs: 20, fps: 2, video: false }), 'good', 'no video: frame rate does not count');
    assert.equal(grade({ loss: 0.2, rttMs: 20, fps: 30, video: true }), 'bad');
    assert.equal(grade({ loss: 0, rttMs: 900, fps: 30, video: true }), 'bad');
    assert.equal(grade({ loss: 0, rttMs: 20, fps: 3, video: true }), 'bad');
  });

  describe('in a call', () => {
    const env = useServerAndBrowser();

    it('shows the grade and the details of each connection', async () => {
      const [a, b] = await Promise.all([newPage(env.browser), newPage(env.browser)]);
      await join(a, env.server.url, 'ann', 'quality');
      await join(b, env.server.url, 'ben', 'quality');
      await waitForMedia(a, ['ben']);
      // On loopback the call is good.
      await a.waitForSelector(`${tileOf('ben')}[data-quality=good]`, { timeout: 15000 });
      assert.equal(await a.$('#grid [data-self] [data-action=connection-info]'), null, 'not on the own tile');
      await a.click(`${tileOf('ben')} [data-action=connection-info]`);
      assert.equal(await a.getAttribute(`${tileOf('ben')} [data-action=connection-info]`, 'aria-expanded'), 'true');
      const stat = (/** @type {string} */ k) => a.textContent(`${tileOf('ben')} .conn-info [data-stat=${k}]`);
      await until(async () => /\d+×\d+/.test((await stat('video')) || ''), { what: 'the video details' });
      assert.match((await stat('path')) || '', /^Direct \(UDP\)$/);
      assert.match((await stat('rtt')) || '', /^\d+ ms$/);
      await until(async () => Number(((await stat('in')) || '').split(' ')[0]) > 50, { what: 'a received bitrate' });
      assert.match((await stat('out')) || '', /^\d+ kbit\/s$/);
      assert.match((await stat('loss')) || '', /%$/);
      assert.match((await stat('video')) || '', /^VP8 \d+×\d+, \d+ fps$/);
      assert.equal(await stat('audio'), 'opus');
      await a.screenshot({ path: path.join(artifactsDir(), 'call-connection-info.png') });
      await a.click(`${tileOf('ben')} [data-action=connection-info]`);
      assert.equal(await a.isHidden(`${tileOf('ben')} .conn-info`), true);
      assert.deepEqual([...a.problems, ...b.problems], []);
      await a.context().close();
      await b.context().close();
    });
  });
});
