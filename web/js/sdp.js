// @ts-check
/**
 * sdp.js — the one SDP fix-up the client makes: keeping the DTLS role of an
 * established link when answering a renegotiation.
 *
 * JSEP (RFC 8829 §5.3.1) says an answer to a re-offer keeps the DTLS role
 * the transport already has. Firefox ESR does not always: answering an ICE
 * restart that arrives right after it rolled back an offer of its own, it
 * can answer `a=setup:active` on a link where the other end is already the
 * DTLS client. Chromium then refuses the answer ("Failed to set SSL role for
 * the transport") and the link is stuck in `have-local-offer`. The DTLS
 * transport itself is not renegotiated by an ICE restart, so writing the
 * role it really has back into the answer is what the browser should have
 * done.
 */

/**
 * The `a=setup:` value of the first media section (or the session) of SDP.
 * @param {string | undefined | null} sdp
 * @returns {string | undefined}
 */
export function setupOf(sdp) {
  return /^a=setup:(\w+)\r?$/m.exec(sdp || '')?.[1];
}

/**
 * Our DTLS role on a negotiated link, from the current local and remote
 * descriptions: `active` (DTLS client) or `passive` (server); `undefined`
 * before the first negotiation has completed.
 * @param {RTCSessionDescription | null | undefined} local
 * @param {RTCSessionDescription | null | undefined} remote
 * @returns {'active' | 'passive' | undefined}
 */
export function dtlsRole(local, remote) {
  if (!local || !remote) return undefined;
  const ours = setupOf(local.sdp);
  if (ours === 'active' || ours === 'passive') return ours;
  // We offered actpass: the answer chose.
  const theirs = setupOf(remote.sdp);
  if (theirs === 'active') return 'passive';
  if (theirs === 'passive') return 'active';
  return undefined;
}

/**
 * ANSWER with every `a=setup:` line saying ROLE, when the browser wrote the
 * other role (see the module's comment); unchanged otherwise.
 * @param {string} answer
 * @param {'active' | 'passive' | undefined} role
 * @returns {string}
 */
export function keepDtlsRole(answer, role) {
  if (!role) return answer;
  const other = role === 'active' ? 'passive' : 'active';
  if (setupOf(answer) !== other) return answer;
  return answer.replace(/^a=setup:(active|passive)(\r?)$/gm, `a=setup:${role}$2`);
}
