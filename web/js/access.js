// @ts-check
/**
 * access.js — the operator token (`access`, protocol v1.1) as the page sees
 * it: taken from the link (`/r/ROOM?access=…`), kept for the tab's later
 * joins and reloads, and read — never verified, the page has no key — to
 * word what the server's `unauthorized` means (expired, for another name)
 * and to fill in the name a token fixes. The server alone decides.
 * No DOM here beyond the address and sessionStorage.
 */

/** sessionStorage key: the token survives a reload of this tab (the address
 * no longer has it after joining), and no other tab or later visit sees it. */
const STORE_KEY = 'huddle.access';

/**
 * @typedef {{room?:string, name?:string, exp?:number, host?:boolean}} AccessClaims
 */

/**
 * The operator token from the address (`?access=`), else the one this tab
 * kept. A token from the address is kept (see STORE_KEY).
 * @returns {string}
 */
export function accessFromPage() {
  const fromUrl = new URLSearchParams(location.search).get('access') || '';
  try {
    if (fromUrl) sessionStorage.setItem(STORE_KEY, fromUrl);
    return fromUrl || sessionStorage.getItem(STORE_KEY) || '';
  } catch {
    return fromUrl; // storage may be off
  }
}

/**
 * PATH with the current query and fragment, less `access`.
 * @param {string} path the path to use (e.g. `/r/ROOM`)
 * @returns {string}
 */
export function addressWithoutAccess(path) {
  const params = new URLSearchParams(location.search);
  params.delete('access');
  const q = params.toString();
  return `${path}${q ? `?${q}` : ''}${location.hash}`;
}

/**
 * The claims of a JWT (its middle part, base64url JSON), unverified. Null
 * when TOKEN is not shaped like one.
 * @param {string} token
 * @returns {AccessClaims | null}
 */
export function readClaims(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const json = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    const c = JSON.parse(json);
    if (!c || typeof c !== 'object') return null;
    /** @type {AccessClaims} */
    const out = {};
    if (typeof c.room === 'string') out.room = c.room;
    if (typeof c.name === 'string') out.name = c.name;
    if (typeof c.exp === 'number') out.exp = c.exp;
    if (c.host === true) out.host = true;
    return out;
  } catch {
    return null;
  }
}

/**
 * Whether two names are the same as the server compares a token's `name`
 * claim: trimmed, NFKC, case-folded (lower case is close enough here: this
 * only chooses which message to show).
 * @param {string} a
 * @param {string} b
 */
export function sameName(a, b) {
  const fold = (/** @type {string} */ s) => s.trim().normalize('NFKC').toLowerCase();
  return fold(a) === fold(b);
}

/**
 * Why the server may have said `unauthorized` to a join as NAME with TOKEN:
 * `missing` (no token, the server wants one), `name` (the token is for
 * another name: see claims.name), `expired`, `room` (for another room), or
 * `invalid` (forged, malformed, or anything else).
 * @param {string} token
 * @param {string} name
 * @param {string} room
 * @param {number} [nowMs]
 * @returns {{why:'missing'|'name'|'expired'|'room'|'invalid', claims:AccessClaims|null}}
 */
export function explainUnauthorized(token, name, room, nowMs = Date.now()) {
  if (!token) return { why: 'missing', claims: null };
  const claims = readClaims(token);
  if (!claims) return { why: 'invalid', claims };
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= nowMs) return { why: 'expired', claims };
  if (claims.room !== undefined && claims.room !== '*' && claims.room !== room) return { why: 'room', claims };
  if (claims.name !== undefined && !sameName(claims.name, name)) return { why: 'name', claims };
  return { why: 'invalid', claims };
}
