// @ts-check
/**
 * Plural forms by the language's own rules (`Intl.PluralRules`): English
 * has one/other, Russian one/few/many/other (1 человек, 2 человека,
 * 5 человек, 1,5 человека).
 */

/** @type {Map<string, Intl.PluralRules>} one rule object per language */
const RULES = new Map();

/**
 * The form of FORMS that fits N in LANG (`other` when the language's
 * category has no form given).
 * @param {string} lang
 * @param {number} n
 * @param {Partial<Record<Intl.LDMLPluralRule, string>> & {other: string}} forms
 * @returns {string}
 */
export function plural(lang, n, forms) {
  let rules = RULES.get(lang);
  if (!rules) {
    rules = new Intl.PluralRules(lang);
    RULES.set(lang, rules);
  }
  return forms[rules.select(n)] ?? forms.other;
}
