// Languages: every string lives in a locale file (web/i18n/en.js and ru.js,
// the same keys); the page speaks Russian when the browser prefers it, sets
// <html lang>, and has a remembered switch (select[name=lang]). Plurals
// follow each language's rules. The first part needs no browser.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, artifactsDir, join, newPage, until, useServerAndBrowser } from './helpers.mjs';

const load = async (/** @type {string} */ lang) =>
  (await import(pathToFileURL(path.join(ROOT, 'web', 'i18n', `${lang}.js`)).href)).default;

/**
 * Every key of OBJ, nested ones as `a.b`, with the kind of its value.
 * @param {Record<string, unknown>} obj
 * @param {string} [prefix]
 * @returns {Map<string, string>}
 */
function shape(obj, prefix = '') {
  const out = new Map();
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (v && typeof v === 'object') {
      for (const [kk, vv] of shape(/** @type {Record<string, unknown>} */ (v), `${key}.`)) out.set(kk, vv);
    } else if (typeof v === 'function') {
      out.set(key, `function/${v.length}`);
    } else {
      out.set(key, typeof v);
    }
  }
  return out;
}

describe('locale files', () => {
  it('define no key twice (the later one would silently win)', () => {
    for (const f of ['en.js', 'ru.js']) {
      const src = readFileSync(path.join(ROOT, 'web', 'i18n', f), 'utf8');
      // Keys of the exported object sit at two spaces of indent.
      const keys = [...src.matchAll(/^ {2}([A-Za-z_$][\w$]*)\s*:/gm)].map((m) => m[1]);
      assert.ok(keys.length > 100, `${f}: found its keys (${keys.length})`);
      const twice = keys.filter((k, i) => keys.indexOf(k) !== i);
      assert.deepEqual(twice, [], `${f}: keys defined twice`);
    }
  });

  it('have the same keys, of the same kind, in every language', async () => {
    const en = shape(await load('en'));
    const files = readdirSync(path.join(ROOT, 'web', 'i18n')).filter((f) => f.endsWith('.js'));
    assert.deepEqual(files.sort(), ['en.js', 'ru.js']);
    for (const f of files) {
      const other = shape(await load(f.replace(/\.js$/, '')));
      const missing = [...en.keys()].filter((k) => !other.has(k));
      const extra = [...other.keys()].filter((k) => !en.has(k));
      assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${f} against en.js`);
      for (const [k, kind] of en) assert.equal(other.get(k), kind, `${f}: ${k}`);
    }
  });

  it('hold no empty string and cover every key the page and the code use', async () => {
    const html = readFileSync(path.join(ROOT, 'web', 'index.html'), 'utf8');
    const used = new Set();
    for (const m of html.matchAll(/data-i18n(?:-label|-placeholder)?="([^"]+)"/g)) used.add(m[1]);
    for (const f of readdirSync(path.join(ROOT, 'web', 'js')).filter((x) => x.endsWith('.js'))) {
      const src = readFileSync(path.join(ROOT, 'web', 'js', f), 'utf8');
      for (const m of src.matchAll(/\bS\.([A-Za-z]\w*)/g)) used.add(m[1]);
    }
    for (const lang of ['en', 'ru']) {
      const s = await load(lang);
      for (const key of used) assert.ok(key in s, `${lang}.js lacks ${key}, which the page uses`);
      for (const [k, kind] of shape(s)) {
        if (kind !== 'string') continue;
        const v = k.split('.').reduce((o, p) => o[p], s);
        assert.ok(v.trim().length > 0, `${lang}.js: ${k} is empty`);
      }
    }
    assert.ok(used.size > 50, `found ${used.size} keys in use`);
  });

  it('follow each language\'s plural rules', async () => {
    const en = await load('en');
    const ru = await load('ru');
    assert.deepEqual([1, 2, 5].map(en.peopleCount), ['1 person', '2 people', '5 people']);
    assert.deepEqual(
      [1, 2, 5, 11, 21, 22, 25].map(ru.peopleCount),
      ['1 человек', '2 человека', '5 человек', '11 человек', '21 человек', '22 человека', '25 человек'],
    );
    assert.deepEqual(
      [1, 3, 7].map(ru.unread),
      ['1 непрочитанное сообщение', '3 непрочитанных сообщения', '7 непрочитанных сообщений'],
    );
    assert.equal(ru.waitingCount(2), '2 человека ждут входа');
  });
});

describe('the page in Russian', () => {
  const env = useServerAndBrowser();

  it('speaks the browser\'s language, switches, and remembers the switch', async () => {
    const ru = await load('ru');
    const en = await load('en');
    const page = await newPage(env.browser, { locale: 'ru-RU' });
    await page.goto(`${env.server.url}/`);
    await page.waitForFunction(() => 'huddle' in window);
    assert.equal(await page.getAttribute('html', 'lang'), 'ru');
    assert.equal(await page.textContent('form#join button[type=submit]'), ru.join);
    assert.equal(await page.getAttribute('form#join input[name=room]', 'placeholder'), ru.roomPlaceholder);
    assert.equal(await page.inputValue('select[name=lang]'), 'ru');
    await page.screenshot({ path: path.join(artifactsDir(), 'join-desktop-ru.png') });
    // An error in Russian.
    await page.click('form#join button[type=submit]');
    await page.waitForSelector('#name-error:not(:empty)');
    assert.equal(await page.textContent('#name-error'), ru.errNameEmpty);

    await page.selectOption('select[name=lang]', 'en');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await page.textContent('form#join button[type=submit]'), en.join);
    assert.equal(await page.textContent('label[for=name]'), en.nameLabel);
    await page.reload();
    await page.waitForFunction(() => 'huddle' in window);
    assert.equal(await page.getAttribute('html', 'lang'), 'en', 'the choice is remembered');
    assert.equal(await page.textContent('form#join button[type=submit]'), en.join);
    await page.context().close();
  });

  it('counts people in Russian during a call', async () => {
    const ru = await load('ru');
    const a = await newPage(env.browser, { locale: 'ru' });
    const b = await newPage(env.browser, { locale: 'ru-RU' });
    await join(a, env.server.url, 'Аня', 'kukhnya');
    await join(b, env.server.url, 'Борис', 'kukhnya');
    await until(async () => (await a.textContent('#call-view'))?.includes(ru.peopleCount(2)), {
      what: `“${ru.peopleCount(2)}” in the call header`,
    });
    assert.equal(await a.getAttribute('html', 'lang'), 'ru');
    await a.screenshot({ path: path.join(artifactsDir(), 'call-desktop-ru.png') });
    assert.deepEqual([...a.problems, ...b.problems], []);
    await a.context().close();
    await b.context().close();
  });

  it('has an English page for English browsers', async () => {
    const en = await load('en');
    const page = await newPage(env.browser, { locale: 'en-GB' });
    await page.goto(`${env.server.url}/`);
    await page.waitForFunction(() => 'huddle' in window);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await page.textContent('form#join button[type=submit]'), en.join);
    await page.context().close();
  });
});
