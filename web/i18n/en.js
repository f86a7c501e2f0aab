// @ts-check
/**
 * English: every string a person reads. `ru.js` has the same keys (a test
 * fails if one is missing from either). Functions build strings that hold a
 * value (a name, a room, a count); counts go through `plural` (the
 * language's own rules, `Intl.PluralRules`). ui.js fills elements marked
 * `data-i18n="key"` (textContent), `data-i18n-label="key"` (aria-label and
 * title) and `data-i18n-placeholder="key"` from the current language.
 */
import { plural } from '../js/plural.js';

export default Object.freeze({
  appName: 'huddle',
  tagline: 'Video calls in your browser. No account, no install.',
  joinTitle: 'Start or join a call',
  /** @param {string} room */
  joinRoomTitle: (room) => `Join ${room}`,
  nameLabel: 'Your name',
  namePlaceholder: 'How others will see you',
  roomLabel: 'Room',
  roomPlaceholder: 'Leave empty for a new room',
  roomHint: 'Letters, digits, - _ and . only. Share the link to invite others.',
  join: 'Join',
  joining: 'Joining…',
  passwordLabel: 'Room password',
  languageLabel: 'Language',
  passwordHint: 'The host set a password for this room. Ask them for it.',

  // Preview on the join page
  previewLabel: 'Camera preview',
  previewCameraOff: 'Camera is off',
  previewStarting: 'Starting camera…',
  mediaAudioOnly: 'No camera available: you will join with audio only.',
  mediaVideoOnly: 'No microphone available: you will join with video only.',
  mediaNone: 'No camera or microphone available: you can still watch and listen, and chat.',
  mediaDenied: 'Camera and microphone are blocked. Allow them in the address bar to be seen and heard; you can still join to watch and chat.',
  mediaDeniedAudioOnly: 'Camera is blocked or missing: you will join with audio only.',
  mediaUnsupported: 'This browser cannot use a camera or microphone here (it needs HTTPS). You can still watch and chat.',
  inCallMediaNote: {
    audioOnly: 'You joined with audio only: no camera was available.',
    videoOnly: 'You joined without a microphone: none was available.',
    none: 'You joined without camera or microphone: you can watch, listen and chat.',
  },

  // "Test connection" on the join page
  netTest: 'Test connection',
  netTesting: 'Testing…',
  netTitleRunning: 'Testing your connection…',
  netRunningHint: 'Asking the server for its relay and trying each way a call can go. This takes up to 10 seconds.',
  netTitle: {
    direct: 'Your connection is ready for calls',
    relay: 'Calls will go through the relay',
    failed: 'Calls may not connect',
    noServers: 'Direct connections only',
  },
  netKind: {
    host: 'Direct on this network',
    srflx: 'Through NAT (your public address)',
    'relay-udp': 'Through the relay over UDP',
    'relay-tcp': 'Through the relay over TCP',
    'relay-tls': 'Through the relay over TLS',
  },
  netFound: 'works',
  netMissing: 'no answer',
  /** @param {number} ms @param {string} protocol */
  netRtt: (ms, protocol) => `Round trip through the relay: ${ms} ms${protocol ? ` (over ${protocol.toUpperCase()})` : ''}`,
  netAdvice: {
    'all-good': 'Your network reaches the server and its relay. Calls should work.',
    'no-servers': 'This server has no STUN or TURN server, so only people whose networks can reach each other directly will connect. Ask the administrator to add a relay (TURN).',
    'no-relay-configured': 'Your network reaches the server over UDP, but the server has no relay (TURN): people behind strict firewalls may not connect.',
    'udp-blocked': 'Your network blocks UDP; calls will go through the server\'s relay, which may add delay.',
    /** @param {string} ports */
    'nothing-reached': (ports) => `Nothing reached the server's relay: ask your administrator to open ${ports} or run huddle doctor.`,
    'relay-no-data': 'The relay answered but carried no data. Ask your administrator to open the relay\'s port range in the firewall, or run huddle doctor.',
    'stun-only-blocked': 'The server\'s STUN server did not answer: your network may block UDP, and calls with people on other networks may fail. Ask the administrator to add a relay (TURN).',
    'needs-invitation': 'This server needs an invitation link. Open the link you were given, then test again.',
    unreachable: 'Could not get the connection settings from the server. Check your connection and try again.',
    'no-webrtc': 'This browser cannot make calls: WebRTC is switched off or missing.',
    'bad-config': 'The browser refused the server\'s STUN/TURN settings. Ask the administrator to check them, or to run huddle doctor.',
  },

  // Form validation and join errors
  errNameEmpty: 'Enter a name so others know who you are.',
  errNameLong: 'That name is too long: 32 characters at most.',
  errNameInvalid: 'That name contains characters that are not allowed (control or invisible characters).',
  errRoomLong: 'That room name is too long: 64 characters at most.',
  errRoomInvalid: 'Room names can only use letters, digits, -, _ and . (and cannot be just . or ..)',
  /** @param {string} name */
  errNameTaken: (name) => `Someone called “${name}” is already in this room. Pick another name.`,
  /** @param {string} room */
  errRoomFull: (room) => `Room “${room}” is full. Try again later or pick another room.`,
  errUnreachable: 'Cannot reach the server. Check your connection and try again.',
  errTimeout: 'The server did not answer in time. Try again.',
  errProtocol: 'The server closed the connection because of an error. Reload the page to try again.',
  errReplaced: 'You joined this call from another tab or window, so this one was disconnected.',
  errRateLimited: 'Too many messages at once. Wait a moment and try again.',
  errGeneric: 'Something went wrong. Try again.',
  /** @param {string} room */
  errRejoinFailed: (room) => `The connection to “${room}” was lost and could not be restored. Join again.`,
  leftCall: 'You left the call.',

  // Room access: password, lobby, invitation links, removal
  errPasswordRequired: 'This room has a password. Enter it to join.',
  errWrongPassword: 'That password is not right. Check it and try again.',
  /** @param {string} room */
  errDenied: (room) => `The host did not let you in to “${room}”.`,
  errUnavailable: 'The server cannot take new calls right now. Try again in a few seconds.',
  errNotHost: 'Only the host can do that.',
  errAccessMissing: 'This server only lets people in with an invitation link. Ask the host for one.',
  errAccessExpired: 'This invitation link has expired. Ask for a new one.',
  errAccessInvalid: 'This invitation link is not valid. Check that you copied all of it, or ask for a new one.',
  /** @param {string} room */
  errAccessRoom: (room) => `This invitation link is not for “${room}”. Use the link you were sent, or ask for a new one.`,
  /** @param {string} name */
  errAccessName: (name) => `This invitation link is for “${name}”. Join as ${name}, or ask for a link of your own.`,
  errRejoinUnauthorized: 'The connection was lost and your invitation link is no longer valid, so you could not rejoin. Ask for a new link.',
  /** @param {string} by */
  removedBy: (by) => `${by} removed you from the call.`,
  removedNoName: 'The host removed you from the call.',
  stoppedWaiting: 'You stopped waiting to join.',
  waitingTitle: 'Waiting for the host to let you in…',
  /** @param {string} room @param {string} name */
  waitingRoom: (room, name) => `You asked to join “${room}” as “${name}”.`,
  waitingHint: 'The host knows you are here. Meanwhile you can check your camera and microphone.',
  stopWaiting: 'Stop waiting',
  /** @param {string} room */
  waitingDocTitle: (room) => `Waiting · ${room}`,

  // Call view
  /** @param {number} n */
  peopleCount: (n) => plural('en', n, { one: `${n} person`, other: `${n} people` }),
  you: 'You',
  /** @param {string} name */
  youSuffix: (name) => `${name} (you)`,
  stateConnecting: 'Connecting…',
  stateConnected: 'Connected',
  stateReconnecting: 'Reconnecting…',
  stateFailed: 'Connection failed',
  signalingReconnecting: 'Connection to the server lost. Reconnecting… Your call continues.',
  signalingBack: 'Back online.',
  micOn: 'Turn off microphone (m)',
  micOff: 'Turn on microphone (m)',
  micMissing: 'No microphone available',
  camOn: 'Turn off camera (v)',
  camOff: 'Turn on camera (v)',
  camMissing: 'No camera available',
  copyLink: 'Copy room link',
  copied: 'Copied',
  copyFailed: 'Copy failed: select the address bar',
  changeRoom: 'Change room',
  people: 'People',
  chat: 'Chat',
  closePanel: 'Close panel',
  leave: 'Leave call',
  mutedLabel: 'Microphone off',
  camOffLabel: 'Camera off',
  gridLabel: 'Videos',
  host: 'Host',
  youAreHost: 'You are now the host of this call.',
  /** @param {string} name */
  nowHost: (name) => `${name} is now the host.`,
  protectedLabel: 'This room has a password',
  lockedLabel: 'Lobby on: the host lets people in',
  /** @param {string} by */
  askedMute: (by) => `${by} asked you to mute. Your microphone is off; turn it on again when you want to speak.`,
  /** @param {string} name */
  askMuteLabel: (name) => `Ask ${name} to mute`,
  /** @param {string} name */
  askedMuteSent: (name) => `You asked ${name} to mute.`,
  /** @param {string} name */
  removeLabel: (name) => `Remove ${name} from the call`,
  notConnected: 'Not connected to the server right now. Try again in a moment.',

  // Lobby, as the host sees it
  knocksLabel: 'People waiting to join',
  /** @param {string} name */
  knockText: (name) => `${name} wants to join`,
  knockWhat: 'wants to join',
  admit: 'Admit',
  deny: 'Deny',
  /** @param {string} name */
  admitLabel: (name) => `Let ${name} in`,
  /** @param {string} name */
  denyLabel: (name) => `Turn ${name} away`,
  /** @param {number} n */
  waitingCount: (n) => plural('en', n, { one: `${n} person is waiting to join`, other: `${n} people are waiting to join` }),
  errAdmitFull: 'The room is full, so nobody else can come in until someone leaves.',

  // Room menu (host)
  roomMenu: 'Room settings',
  roomMenuTitle: 'Room settings',
  roomMenuHelp: 'As the host, you decide who gets in.',
  lockLabel: 'Lobby',
  lockHint: 'New people wait until you let them in.',
  roomPasswordLabel: 'Password',
  roomPasswordPlaceholder: 'New password',
  roomPasswordNone: 'No password: anyone with the link can join.',
  roomPasswordSet: 'This room has a password. People already here stay.',
  errRoomPasswordEmpty: 'Type a password first.',
  errPasswordLong: 'That password is too long: 256 bytes at most (fewer for non-Latin letters).',
  setPassword: 'Set',
  clearPassword: 'Remove password',
  done: 'Done',

  pin: 'Pin (double-click)',
  unpin: 'Unpin (double-click)',
  fullscreen: 'Full screen',
  fullscreenFailed: 'This browser did not allow full screen.',
  qualityGood: 'Connection: good (details)',
  qualityWeak: 'Connection: weak (details)',
  qualityBad: 'Connection: bad (details)',
  connPath: 'Path',
  pathDirect: 'Direct',
  pathNat: 'Direct, through NAT',
  pathRelay: 'Through the relay (TURN)',
  pathUnknown: 'Not connected yet',
  connRtt: 'Round trip',
  connIn: 'Receiving',
  connOut: 'Sending',
  connLoss: 'Packet loss',
  connVideo: 'Video',
  connAudio: 'Audio',
  connNone: '—',
  /** @param {number} n */
  connMs: (n) => `${n} ms`,
  /** @param {number} n */
  connKbps: (n) => `${n} kbit/s`,
  /** @param {string} codec @param {number} w @param {number} h @param {number|null} fps */
  connVideoValue: (codec, w, h, fps) => `${codec} ${w}×${h}${fps === null ? '' : `, ${fps} fps`}`,
  shareScreen: 'Share screen (s)',
  stopShare: 'Stop sharing (s)',
  shareFailed: 'The screen was not shared (cancelled, or this browser cannot).',
  /** @param {string} name */
  screenOf: (name) => `${name}'s screen`,
  settings: 'Settings',
  settingsTitle: 'Camera and sound',
  settingsHelp: 'A change applies at once, also during a call.',
  cameraLabel: 'Camera',
  microphoneLabel: 'Microphone',
  speakerLabel: 'Speaker',
  noiseSuppression: 'Noise suppression',
  deviceDefault: 'Default',
  deviceNone: 'None available',
  /** @param {number} n */
  cameraN: (n) => `Camera ${n}`,
  /** @param {number} n */
  microphoneN: (n) => `Microphone ${n}`,
  /** @param {number} n */
  speakerN: (n) => `Speaker ${n}`,
  deviceFailed: 'That device could not be opened (in use by another app?). The previous one stays.',
  cameraGone: 'Your camera was disconnected: using the default camera now.',
  microphoneGone: 'Your microphone was disconnected: using the default microphone now.',
  // Hands and reactions
  raiseHand: 'Raise hand (h)',
  lowerHand: 'Lower hand (h)',
  handRaised: 'Hand raised',
  /** @param {string} name */
  handRaisedBy: (name) => `${name} raised a hand`,
  react: 'Send a reaction',
  /** @param {string} name @param {string} what */
  reactedBy: (name, what) => `${name}: ${what}`,
  reactionNames: {
    '👍': 'Thumbs up',
    '👏': 'Applause',
    '😂': 'Laughing',
    '❤️': 'Love',
    '🎉': 'Celebrate',
    '😮': 'Surprised',
  },

  // Chat
  chatPlaceholder: 'Send a message to everyone',
  chatSend: 'Send',
  chatEmpty: 'Messages are sent straight to the others and are not stored.',
  /** @param {string} name */
  joinedLine: (name) => `${name} joined`,
  /** @param {string} name */
  leftLine: (name) => `${name} left`,
  /** @param {string} room */
  youJoinedLine: (room) => `You joined ${room}`,
  /** @param {number} n */
  unread: (n) => plural('en', n, { one: `${n} unread message`, other: `${n} unread messages` }),

  // Files (sent peer to peer, in the chat)
  sendFile: 'Send a file to everyone',
  fileAccept: 'Accept',
  fileDecline: 'Decline',
  fileCancel: 'Cancel',
  fileSave: 'Save',
  /** @param {string} name @param {string} file */
  fileOfferedBy: (name, file) => `${name} offers a file: ${file}`,
  fileOffered: 'Sent to you. Accept it to download it.',
  fileStarting: 'Starting…',
  /** @param {string} pct */
  fileReceiving: (pct) => `Receiving… ${pct}`,
  fileReceived: 'Received. Save it to keep it.',
  fileYouDeclined: 'You declined this file.',
  /** @param {string} limit */
  fileTooLargeIn: (limit) => `Too large: this page takes files up to ${limit}.`,
  fileYouCancelled: 'You cancelled the transfer.',
  /** @param {string} name */
  fileTheyCancelled: (name) => `${name} cancelled the transfer.`,
  /** @param {string} name */
  fileLeft: (name) => `${name} left before the transfer finished.`,
  fileEnded: 'The call ended before the transfer finished.',
  /** @param {string} name */
  fileLost: (name) => `The connection to ${name} was lost before the transfer finished.`,
  /** @param {string} name */
  fileBadData: (name) => `${name} sent more than the file's size, so the transfer was stopped.`,
  /** @param {string} name */
  fileTimeout: (name) => `${name} did not start sending. Ask them to send it again.`,
  /** @param {string} pct */
  fileSending: (pct) => `Sending… ${pct}`,
  /** @param {number} n */
  fileWaiting: (n) => plural('en', n, { one: `Waiting for ${n} person to accept`, other: `Waiting for ${n} people to accept` }),
  /** @param {number} n */
  fileSentTo: (n) => plural('en', n, { one: `Sent to ${n} person`, other: `Sent to ${n} people` }),
  fileNobody: 'No one took the file.',
  legWaiting: 'waiting',
  legDone: 'received',
  legDeclined: 'declined',
  legTooLarge: 'too large for them',
  legBusy: 'busy',
  legCancelled: 'cancelled',
  legLeft: 'left the call',
  legLost: 'connection lost',
  legUnreadable: 'could not read the file',
  /** @param {string} name @param {string} limit */
  fileTooLarge: (name, limit) => `“${name}” is too large: files up to ${limit} can be sent.`,
  fileNoOne: 'No one else is in the call yet to send a file to.',

  moreActions: 'More',
  // Change room dialog
  changeRoomTitle: 'Move to another room',
  changeRoomHelp: 'You leave this call and join the other room with the same name.',
  move: 'Move',
  cancel: 'Cancel',
});
