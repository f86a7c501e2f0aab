// The grid resizes with the number of people (1 to 16) and the window
// (phone to desktop): ceil(sqrt(n)) columns on wide screens without
// scrolling; on narrow ones one column for one or two tiles and two from
// three on, with up to six fitting without scrolling; tiles stay 16:9.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join, newPage, useServerAndBrowser, T } from './helpers.mjs';

const SIZES = [
  { width: 360, height: 740 },
  { width: 390, height: 844 },
  { width: 768, height: 1024 },
  { width: 1280, height: 800 },
  { width: 1920, height: 1080 },
  { width: 3840, height: 2160 },
];

describe('grid layout', () => {
  const env = useServerAndBrowser();

  it('fits 1 to 16 tiles on every window size', async () => {
    const page = await newPage(env.browser);
    await join(page, env.server.url, 'solo', 'layout');
    for (const size of SIZES) {
      await page.setViewportSize(size);
      // The real grid, with N copies of the own tile (layout only).
      const results = await page.evaluate(async (max) => {
        const grid = /** @type {HTMLElement} */ (document.querySelector('#grid'));
        const self = /** @type {HTMLElement} */ (grid.querySelector('[data-self]'));
        const { gridLayout } = await import('/js/ui.js');
        const out = [];
        for (let n = 1; n <= max; n += 1) {
          const clones = [];
          for (let i = 1; i < n; i += 1) clones.push(grid.appendChild(self.cloneNode(true)));
          const { narrow, cols, width } = gridLayout(n, grid.clientWidth, grid.clientHeight);
          grid.style.setProperty('--tile-w', `${width}px`);
          const g = grid.getBoundingClientRect();
          const rects = [...grid.querySelectorAll('.tile')].map((t) => t.getBoundingClientRect());
          out.push({
            n, narrow, cols,
            firstRow: rects.filter((r) => Math.abs(r.top - rects[0].top) < 1).length,
            ratio: rects[0].width / rects[0].height,
            insideX: rects.every((r) => r.left >= g.left - 1 && r.right <= g.right + 1),
            insideY: rects.every((r) => r.top >= g.top - 1 && r.bottom <= g.bottom + 1),
            width: rects[0].width,
          });
          for (const c of clones) c.remove();
        }
        return out;
      }, 16);
      for (const r of results) {
        const at = `${size.width}x${size.height}, ${r.n} tiles`;
        assert.ok(Math.abs(r.ratio - 16 / 9) < 0.02, `${at}: 16:9`);
        assert.ok(r.insideX, `${at}: no horizontal overflow`);
        if (r.narrow) {
          assert.equal(r.cols, r.n >= 3 ? 2 : 1, `${at}: ${r.n >= 3 ? 'two columns' : 'one column'} on a narrow screen`);
          assert.equal(r.firstRow, Math.min(r.cols, r.n), `${at}: laid out in ${r.cols} columns`);
          if (r.n <= 6) assert.ok(r.insideY, `${at}: up to six fit without scrolling`);
        } else {
          assert.equal(r.cols, Math.ceil(Math.sqrt(r.n)), `${at}: ceil(sqrt(n)) columns`);
          assert.equal(r.firstRow, Math.min(r.cols, r.n), `${at}: laid out in ${r.cols} columns`);
          assert.ok(r.insideY, `${at}: no scrolling on a wide screen`);
        }
      }
    }
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});
