// Tests 4 and 5: the leave button and a closed tab remove the tile for the
// others within 2 s; a room change moves the person from one grid to the other.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  join, newPage, remoteTiles, tileOf, useServerAndBrowser, waitForMedia, T,
} from './helpers.mjs';

describe('leaving and moving', () => {
  const env = useServerAndBrowser();

  /**
   * Resolves with the ms until NAME's tile is gone on every page of WATCHERS.
   * @param {import('playwright-core').Page[]} watchers
   * @param {string} name
   * @param {() => Promise<unknown>} action
   */
  async function timeUntilGone(watchers, name, action) {
    const gone = watchers.map((w) =>
      w.waitForSelector(tileOf(name), { state: 'detached', timeout: T.short }),
    );
    const t0 = Date.now();
    await action();
    await Promise.all(gone);
    return Date.now() - t0;
  }

  it('leave button, and closing a tab: the tile disappears for the others within 2 s', async () => {
    const room = 'leavers';
    const names = ['ann', 'ben', 'cat'];
    const p = [];
    for (const n of names) {
      const page = await newPage(env.browser);
      await join(page, env.server.url, n, room);
      p.push(page);
    }
    await waitForMedia(p[0], ['ben', 'cat']);
    await waitForMedia(p[1], ['ann', 'cat']);

    // cat clicks Leave.
    const leaveMs = await timeUntilGone([p[0], p[1]], 'cat', () => p[2].click('[data-action=leave]'));
    assert.ok(leaveMs < 2000, `tile gone ${leaveMs} ms after Leave`);
    await p[2].waitForSelector('body[data-view=join] form#join', { timeout: T.short });
    assert.equal(await p[2].inputValue('input[name=name]'), 'cat', 'the form keeps the name');
    assert.equal(await p[2].inputValue('input[name=room]'), room, 'the form keeps the room');
    await p[2].waitForSelector('#messages:empty, #messages', { state: 'attached' });
    const leftLines = await p[0].$$eval('#messages .system[data-event=left]', (els) =>
      els.map((e) => /** @type {HTMLElement} */ (e).dataset.name),
    );
    assert.deepEqual(leftLines, ['cat'], '"cat left" shows in the chat');

    // ben closes the tab (beforeunload runs, as when a person closes it).
    const closeMs = await timeUntilGone([p[0]], 'ben', () => p[1].close({ runBeforeUnload: true }));
    assert.ok(closeMs < 2000, `tile gone ${closeMs} ms after closing the tab`);

    // cat closes a tab without beforeunload (a crash-like close): the
    // browser still closes the socket, so the server removes cat at once.
    await join(p[2], env.server.url, 'cat', room);
    await waitForMedia(p[0], ['cat']);
    const crashMs = await timeUntilGone([p[0]], 'cat', () => p[2].context().close());
    assert.ok(crashMs < 2000, `tile gone ${crashMs} ms after the context closed`);
    assert.deepEqual(await remoteTiles(p[0]), []);
    assert.deepEqual(p[0].problems, []);
    await p[0].context().close();
  });

  it('room change: the mover leaves the old grid and appears in the new one', async () => {
    const [dan, eve, fay] = [await newPage(env.browser), await newPage(env.browser), await newPage(env.browser)];
    await join(dan, env.server.url, 'dan', 'old-room');
    await join(eve, env.server.url, 'eve', 'old-room');
    await join(fay, env.server.url, 'fay', 'new-room');
    await waitForMedia(dan, ['eve']);

    await eve.click('[data-action=change-room]');
    await eve.fill('#move-room', 'new-room');
    const gone = dan.waitForSelector(tileOf('eve'), { state: 'detached', timeout: T.short });
    await eve.press('#move-room', 'Enter');
    await gone;
    await waitForMedia(fay, ['eve']);
    await waitForMedia(eve, ['fay']);
    assert.deepEqual(await remoteTiles(eve), ['fay'], 'eve sees only the new room');
    assert.equal(new URL(eve.url()).pathname, '/r/new-room', 'the address follows the room');
    assert.equal(await eve.textContent('#room-name'), 'new-room');
    assert.deepEqual(await remoteTiles(dan), [], 'dan is alone in the old room');

    // Moving into a room where the name is taken fails and stays put.
    const fay2 = await newPage(env.browser);
    await join(fay2, env.server.url, 'eve', 'third-room');
    await fay2.click('[data-action=change-room]');
    await fay2.fill('#move-room', 'new-room');
    await fay2.press('#move-room', 'Enter');
    await fay2.waitForSelector('#move-error:not(:empty)', { timeout: T.short });
    assert.match(await fay2.textContent('#move-error'), /already/);
    assert.equal(await fay2.textContent('#room-name'), 'third-room', 'still in its room');
    for (const p of [dan, eve, fay, fay2]) assert.deepEqual(p.problems, []);
    for (const p of [dan, eve, fay, fay2]) await p.context().close();
  });
});
