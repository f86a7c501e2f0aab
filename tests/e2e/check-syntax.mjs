// Checks every web/js and web/i18n file parses as an ES module (what `node --check`
// does, in module mode: the browser loads these files as modules), and
// that the HTML keeps to the Content-Security-Policy (no inline scripts,
// styles or event handlers). Exits non-zero on the first kind of problem.
//
//   node tests/e2e/check-syntax.mjs

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const jsDir = path.join(root, 'web', 'js');
let failed = 0;
/** @param {string} f a file under web/js (or ../i18n/…) */
const shown = (f) => path.posix.normalize(`web/js/${f}`);

const files = [
  ...readdirSync(jsDir).filter((f) => f.endsWith('.js')).sort(),
  ...readdirSync(path.join(root, 'web', 'i18n')).filter((f) => f.endsWith('.js')).sort().map((f) => `../i18n/${f}`),
];
if (files.length === 0) {
  console.error('check-syntax: no files in web/js');
  process.exit(1);
}
for (const f of files) {
  const file = path.join(jsDir, f);
  // --input-type=module makes --check parse stdin as an ES module.
  const r = spawnSync(process.execPath, ['--input-type=module', '--check'], {
    input: readFileSync(file),
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    failed += 1;
    console.error(`not ok ${shown(f)}\n${(r.stderr || '').replace(/\[stdin\]/g, shown(f))}`);
  } else {
    console.log(`ok ${shown(f)}`);
  }
}

// The CSP forbids inline code and styles: keep index.html free of them.
const html = readFileSync(path.join(root, 'web', 'index.html'), 'utf8');
const rules = [
  [/<script(?![^>]*\bsrc=)[^>]*>/i, 'inline <script>'],
  [/<style[\s>]/i, 'inline <style>'],
  [/\sstyle=/i, 'style="" attribute'],
  [/\son[a-z]+=/i, 'inline event handler'],
  [/(?:src|href)="(?:https?:)?\/\//i, 'external resource'],
];
for (const [re, what] of rules) {
  if (re.test(html)) {
    failed += 1;
    console.error(`not ok web/index.html: ${what}`);
  }
}
for (const f of files) {
  const src = readFileSync(path.join(jsDir, f), 'utf8');
  if (/\.innerHTML\s*=|\.outerHTML\s*=|insertAdjacentHTML|document\.write/.test(src)) {
    failed += 1;
    console.error(`not ok ${shown(f)}: builds HTML from strings (use textContent)`);
  }
}

console.log(failed ? `check-syntax: ${failed} problem(s)` : `check-syntax: ${files.length} files ok`);
process.exit(failed ? 1 : 0);
