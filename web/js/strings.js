// @ts-check
/**
 * The strings a person reads, in the language the page speaks. The texts
 * live in the locale files (`web/i18n/en.js`, `web/i18n/ru.js`, the same
 * keys); this module picks one and keeps `S` filled with it.
 *
 * The language: the one chosen with the page's switch (remembered in
 * localStorage), else the first of `navigator.languages` that the page
 * speaks, else English. `setLanguage` changes it in place: `S` is one object
 * whose values are swapped, so every module that imported it reads the new
 * texts; ui.js then fills the marked elements again.
 */
import EN from '../i18n/en.js';
import RU from '../i18n/ru.js';

/** The languages the page speaks: code → its own name and texts. */
export const LANGUAGES = Object.freeze({
  en: { name: 'English', strings: EN },
  ru: { name: 'Русский', strings: RU },
});

/** @typedef {keyof typeof LANGUAGES} Lang */
/** @typedef {typeof EN} Strings */

/** localStorage key of the language chosen with the switch. */
const LANG_KEY = 'huddle.lang';

/**
 * @param {string} code
 * @returns {code is Lang}
 */
function spoken(code) {
  return Object.hasOwn(LANGUAGES, code);
}

/**
 * The language to speak: the remembered choice, else the browser's first
 * preference the page speaks (`ru-RU` counts as `ru`), else English.
 * @param {readonly string[]} [preferred] navigator.languages
 * @param {string | null} [stored] the remembered choice
 * @returns {Lang}
 */
export function pickLanguage(preferred = globalThis.navigator?.languages ?? [], stored = readStored()) {
  if (stored && spoken(stored)) return stored;
  for (const tag of preferred) {
    const primary = String(tag).toLowerCase().split('-')[0];
    if (spoken(primary)) return primary;
  }
  return 'en';
}

/** @returns {string | null} */
function readStored() {
  try {
    return globalThis.localStorage?.getItem(LANG_KEY) ?? null;
  } catch {
    return null; // storage may be off
  }
}

/** @type {Lang} */
let current = pickLanguage();

/** The texts of the current language (the same object for the page's life). */
export const S = /** @type {Strings} */ ({ ...LANGUAGES[current].strings });

/** @returns {Lang} the language the page speaks now */
export function language() {
  return current;
}

/**
 * Speaks LANG from now on (and remembers the choice when REMEMBER):
 * swaps the texts in `S` and sets `<html lang>`.
 * @param {Lang} lang
 * @param {boolean} [remember]
 */
export function setLanguage(lang, remember = true) {
  current = lang;
  Object.assign(S, LANGUAGES[lang].strings);
  if (globalThis.document) document.documentElement.lang = lang;
  if (remember) {
    try {
      localStorage.setItem(LANG_KEY, lang);
    } catch {
      /* storage may be off */
    }
  }
}

setLanguage(current, false);
