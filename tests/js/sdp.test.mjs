// The DTLS-role fix-up (web/js/sdp.js) under Node: the role read off a
// negotiated link, and an answer that flips it written back.
//
//   node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtlsRole, keepDtlsRole, setupOf } from '../../web/js/sdp.js';

/** A two-section SDP with SETUP on each media section. @param {string} setup */
const sdp = (setup) =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'a=mid:0',
    `a=setup:${setup}`,
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'a=mid:1',
    `a=setup:${setup}`,
    '',
  ].join('\r\n');

/** @param {'offer'|'answer'} type @param {string} setup */
const desc = (type, setup) => /** @type {RTCSessionDescription} */ ({ type, sdp: sdp(setup) });

test('setupOf reads the first setup line, CRLF or LF', () => {
  assert.equal(setupOf(sdp('actpass')), 'actpass');
  assert.equal(setupOf(sdp('passive').replaceAll('\r\n', '\n')), 'passive');
  assert.equal(setupOf('v=0\r\n'), undefined);
  assert.equal(setupOf(null), undefined);
});

test('dtlsRole: the offerer takes the opposite of what the answer chose', () => {
  assert.equal(dtlsRole(desc('offer', 'actpass'), desc('answer', 'active')), 'passive');
  assert.equal(dtlsRole(desc('offer', 'actpass'), desc('answer', 'passive')), 'active');
  // The answerer's own line says it.
  assert.equal(dtlsRole(desc('answer', 'active'), desc('offer', 'actpass')), 'active');
  assert.equal(dtlsRole(desc('answer', 'passive'), desc('offer', 'actpass')), 'passive');
  // Before the first negotiation completes there is no role to keep.
  assert.equal(dtlsRole(null, desc('offer', 'actpass')), undefined);
  assert.equal(dtlsRole(desc('offer', 'actpass'), null), undefined);
  assert.equal(dtlsRole(desc('offer', 'actpass'), desc('offer', 'actpass')), undefined);
});

test('keepDtlsRole rewrites an answer that flips the role, on every section', () => {
  const fixed = keepDtlsRole(sdp('active'), 'passive');
  assert.equal(fixed, sdp('passive'));
  assert.equal(fixed.match(/a=setup:passive/g)?.length, 2);
  assert.equal(keepDtlsRole(sdp('passive'), 'active'), sdp('active'));
  // LF-only SDP keeps its line ends.
  assert.equal(keepDtlsRole(sdp('active').replaceAll('\r\n', '\n'), 'passive'), sdp('passive').replaceAll('\r\n', '\n'));
});

test('keepDtlsRole leaves a right or first answer alone', () => {
  assert.equal(keepDtlsRole(sdp('passive'), 'passive'), sdp('passive'));
  assert.equal(keepDtlsRole(sdp('active'), undefined), sdp('active'));
  assert.equal(keepDtlsRole(sdp('actpass'), 'active'), sdp('actpass'));
});
