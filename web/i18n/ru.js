// @ts-check
/**
 * Русский: те же ключи, что в `en.js` (тест проверяет, что ни одного не
 * пропущено). Числа склоняются по правилам языка (`plural`,
 * `Intl.PluralRules`): 1 человек, 2 человека, 5 человек.
 */
import { plural } from '../js/plural.js';

export default Object.freeze({
  appName: 'huddle',
  tagline: 'Видеозвонки в браузере. Без регистрации и установки.',
  joinTitle: 'Начать звонок или присоединиться',
  /** @param {string} room */
  joinRoomTitle: (room) => `Войти в ${room}`,
  nameLabel: 'Ваше имя',
  namePlaceholder: 'Так вас увидят другие',
  roomLabel: 'Комната',
  roomPlaceholder: 'Оставьте пустым для новой комнаты',
  roomHint: 'Только буквы, цифры, - _ и точка. Чтобы пригласить других, отправьте им ссылку.',
  join: 'Войти',
  joining: 'Входим…',
  passwordLabel: 'Пароль комнаты',
  languageLabel: 'Язык',
  passwordHint: 'Организатор защитил комнату паролем. Узнайте пароль у него.',

  // Preview on the join page
  previewLabel: 'Предпросмотр камеры',
  previewCameraOff: 'Камера выключена',
  previewStarting: 'Включаем камеру…',
  mediaAudioOnly: 'Камеры нет: вы войдёте только со звуком.',
  mediaVideoOnly: 'Микрофона нет: вы войдёте только с видео.',
  mediaNone: 'Нет ни камеры, ни микрофона: вы сможете смотреть, слушать и писать в чат.',
  mediaDenied: 'Доступ к камере и микрофону запрещён. Разрешите его в адресной строке, чтобы вас видели и слышали; войти, чтобы смотреть и писать в чат, можно и так.',
  mediaDeniedAudioOnly: 'Камера недоступна или запрещена: вы войдёте только со звуком.',
  mediaUnsupported: 'Здесь браузер не может использовать камеру и микрофон (нужен HTTPS). Смотреть и писать в чат можно.',
  inCallMediaNote: {
    audioOnly: 'Вы вошли только со звуком: камеры не было.',
    videoOnly: 'Вы вошли без микрофона: его не было.',
    none: 'Вы вошли без камеры и микрофона: можно смотреть, слушать и писать в чат.',
  },

  // «Проверить соединение» на странице входа
  netTest: 'Проверить соединение',
  netTesting: 'Проверяем…',
  netTitleRunning: 'Проверяем соединение…',
  netRunningHint: 'Спрашиваем у сервера его ретранслятор и пробуем каждый путь, которым может пойти звонок. Это займёт до 10 секунд.',
  netTitle: {
    direct: 'Соединение готово для звонков',
    relay: 'Звонки пойдут через ретранслятор',
    failed: 'Звонки могут не соединиться',
    noServers: 'Только прямые соединения',
  },
  netKind: {
    host: 'Напрямую в этой сети',
    srflx: 'Через NAT (ваш внешний адрес)',
    'relay-udp': 'Через ретранслятор по UDP',
    'relay-tcp': 'Через ретранслятор по TCP',
    'relay-tls': 'Через ретранслятор по TLS',
  },
  netFound: 'работает',
  netMissing: 'нет ответа',
  /** @param {number} ms @param {string} protocol */
  netRtt: (ms, protocol) => `Задержка туда и обратно через ретранслятор: ${ms} мс${protocol ? ` (по ${protocol.toUpperCase()})` : ''}`,
  netAdvice: {
    'all-good': 'Ваша сеть достаёт до сервера и его ретранслятора. Звонки должны работать.',
    'no-servers': 'У этого сервера нет ни STUN, ни TURN, поэтому соединятся только те, чьи сети видят друг друга напрямую. Попросите администратора добавить ретранслятор (TURN).',
    'no-relay-configured': 'Ваша сеть достаёт до сервера по UDP, но у сервера нет ретранслятора (TURN): люди за строгими файрволами могут не соединиться.',
    'udp-blocked': 'Ваша сеть блокирует UDP; звонки пойдут через ретранслятор сервера, и задержка может вырасти.',
    /** @param {string} ports */
    'nothing-reached': (ports) => `До ретранслятора сервера ничего не дошло: попросите администратора открыть ${ports} или запустить huddle doctor.`,
    'relay-no-data': 'Ретранслятор ответил, но не передал данные. Попросите администратора открыть в файрволе диапазон портов ретранслятора или запустить huddle doctor.',
    'stun-only-blocked': 'STUN-сервер не ответил: возможно, ваша сеть блокирует UDP, и звонки с людьми из других сетей не соединятся. Попросите администратора добавить ретранслятор (TURN).',
    'needs-invitation': 'Этому серверу нужна ссылка-приглашение. Откройте ссылку, которую вам прислали, и проверьте ещё раз.',
    unreachable: 'Не удалось получить настройки соединения от сервера. Проверьте подключение и попробуйте ещё раз.',
    'no-webrtc': 'Этот браузер не может звонить: WebRTC выключен или отсутствует.',
    'bad-config': 'Браузер не принял настройки STUN/TURN сервера. Попросите администратора проверить их или запустить huddle doctor.',
  },

  // Form validation and join errors
  errNameEmpty: 'Введите имя, чтобы другие знали, кто вы.',
  errNameLong: 'Имя слишком длинное: не больше 32 символов.',
  errNameInvalid: 'В имени есть недопустимые символы (управляющие или невидимые).',
  errRoomLong: 'Название комнаты слишком длинное: не больше 64 символов.',
  errRoomInvalid: 'В названии комнаты можно использовать только буквы, цифры, -, _ и точку (и оно не может быть просто . или ..)',
  /** @param {string} name */
  errNameTaken: (name) => `В этой комнате уже есть «${name}». Выберите другое имя.`,
  /** @param {string} room */
  errRoomFull: (room) => `Комната «${room}» заполнена. Попробуйте позже или выберите другую.`,
  errUnreachable: 'Не удаётся связаться с сервером. Проверьте подключение и попробуйте ещё раз.',
  errTimeout: 'Сервер не ответил вовремя. Попробуйте ещё раз.',
  errProtocol: 'Сервер закрыл соединение из-за ошибки. Перезагрузите страницу и попробуйте снова.',
  errReplaced: 'Вы вошли в этот звонок из другой вкладки или окна, поэтому здесь соединение закрыто.',
  errRateLimited: 'Слишком много сообщений сразу. Подождите немного и попробуйте снова.',
  errGeneric: 'Что-то пошло не так. Попробуйте ещё раз.',
  /** @param {string} room */
  errRejoinFailed: (room) => `Связь с «${room}» потеряна, и восстановить её не удалось. Войдите снова.`,
  leftCall: 'Вы вышли из звонка.',

  // Room access: password, lobby, invitation links, removal
  errPasswordRequired: 'У этой комнаты есть пароль. Введите его, чтобы войти.',
  errWrongPassword: 'Пароль неверный. Проверьте его и попробуйте снова.',
  /** @param {string} room */
  errDenied: (room) => `Организатор не впустил вас в «${room}».`,
  errUnavailable: 'Сервер сейчас не может принять новый звонок. Попробуйте через несколько секунд.',
  errNotHost: 'Это может сделать только организатор.',
  errAccessMissing: 'На этот сервер пускают только по приглашению. Попросите ссылку у организатора.',
  errAccessExpired: 'Срок действия ссылки-приглашения истёк. Попросите новую.',
  errAccessInvalid: 'Ссылка-приглашение недействительна. Проверьте, что скопировали её целиком, или попросите новую.',
  /** @param {string} room */
  errAccessRoom: (room) => `Эта ссылка-приглашение не для «${room}». Откройте ссылку, которую вам прислали, или попросите новую.`,
  /** @param {string} name */
  errAccessName: (name) => `Эта ссылка-приглашение для «${name}». Войдите как ${name} или попросите свою ссылку.`,
  errRejoinUnauthorized: 'Связь прервалась, а ваша ссылка-приглашение больше не действует, поэтому вернуться не удалось. Попросите новую ссылку.',
  /** @param {string} by */
  removedBy: (by) => `${by} удалил(а) вас из звонка.`,
  removedNoName: 'Организатор удалил вас из звонка.',
  stoppedWaiting: 'Вы перестали ждать входа.',
  waitingTitle: 'Ждём, когда организатор вас впустит…',
  /** @param {string} room @param {string} name */
  waitingRoom: (room, name) => `Вы попросились в «${room}» как «${name}».`,
  waitingHint: 'Организатор знает, что вы здесь. А пока можно проверить камеру и микрофон.',
  stopWaiting: 'Не ждать',
  /** @param {string} room */
  waitingDocTitle: (room) => `Ожидание · ${room}`,

  // Call view
  /** @param {number} n */
  peopleCount: (n) =>
    plural('ru', n, { one: `${n} человек`, few: `${n} человека`, many: `${n} человек`, other: `${n} человека` }),
  you: 'Вы',
  /** @param {string} name */
  youSuffix: (name) => `${name} (вы)`,
  stateConnecting: 'Подключаемся…',
  stateConnected: 'Подключено',
  stateReconnecting: 'Переподключаемся…',
  stateFailed: 'Не удалось подключиться',
  signalingReconnecting: 'Связь с сервером потеряна. Переподключаемся… Звонок продолжается.',
  signalingBack: 'Связь восстановлена.',
  micOn: 'Выключить микрофон (m)',
  micOff: 'Включить микрофон (m)',
  micMissing: 'Микрофона нет',
  camOn: 'Выключить камеру (v)',
  camOff: 'Включить камеру (v)',
  camMissing: 'Камеры нет',
  copyLink: 'Скопировать ссылку на комнату',
  copied: 'Скопировано',
  copyFailed: 'Не удалось скопировать: выделите адресную строку',
  changeRoom: 'Сменить комнату',
  people: 'Участники',
  chat: 'Чат',
  closePanel: 'Закрыть панель',
  leave: 'Выйти из звонка',
  mutedLabel: 'Микрофон выключен',
  camOffLabel: 'Камера выключена',
  gridLabel: 'Видео',
  host: 'Организатор',
  youAreHost: 'Теперь вы организатор этого звонка.',
  /** @param {string} name */
  nowHost: (name) => `Теперь организатор — ${name}.`,
  protectedLabel: 'У этой комнаты есть пароль',
  lockedLabel: 'Зал ожидания включён: организатор впускает участников',
  /** @param {string} by */
  askedMute: (by) => `${by} просит вас выключить микрофон. Микрофон выключен; включите его, когда захотите говорить.`,
  /** @param {string} name */
  askMuteLabel: (name) => `Попросить ${name} выключить микрофон`,
  /** @param {string} name */
  askedMuteSent: (name) => `Вы попросили ${name} выключить микрофон.`,
  /** @param {string} name */
  removeLabel: (name) => `Удалить ${name} из звонка`,
  notConnected: 'Сейчас нет связи с сервером. Попробуйте через минуту.',

  // Lobby, as the host sees it
  knocksLabel: 'Ждут входа',
  /** @param {string} name */
  knockText: (name) => `${name} просит войти`,
  knockWhat: 'просит войти',
  admit: 'Впустить',
  deny: 'Отклонить',
  /** @param {string} name */
  admitLabel: (name) => `Впустить ${name}`,
  /** @param {string} name */
  denyLabel: (name) => `Не впускать ${name}`,
  /** @param {number} n */
  waitingCount: (n) =>
    plural('ru', n, {
      one: `${n} человек ждёт входа`,
      few: `${n} человека ждут входа`,
      many: `${n} человек ждут входа`,
      other: `${n} человека ждут входа`,
    }),
  errAdmitFull: 'Комната заполнена: никто не сможет войти, пока кто-нибудь не выйдет.',

  // Room menu (host)
  roomMenu: 'Настройки комнаты',
  roomMenuTitle: 'Настройки комнаты',
  roomMenuHelp: 'Вы организатор и решаете, кого впускать.',
  lockLabel: 'Зал ожидания',
  lockHint: 'Новые участники ждут, пока вы их впустите.',
  roomPasswordLabel: 'Пароль',
  roomPasswordPlaceholder: 'Новый пароль',
  roomPasswordNone: 'Пароля нет: войти может любой, у кого есть ссылка.',
  roomPasswordSet: 'У комнаты есть пароль. Те, кто уже здесь, остаются.',
  errRoomPasswordEmpty: 'Сначала введите пароль.',
  errPasswordLong: 'Пароль слишком длинный: не больше 256 байт (для кириллицы — примерно 128 букв).',
  setPassword: 'Задать',
  clearPassword: 'Убрать пароль',
  done: 'Готово',

  pin: 'Закрепить (двойной щелчок)',
  unpin: 'Открепить (двойной щелчок)',
  fullscreen: 'Во весь экран',
  fullscreenFailed: 'Браузер не разрешил полноэкранный режим.',
  qualityGood: 'Связь: хорошая (подробности)',
  qualityWeak: 'Связь: слабая (подробности)',
  qualityBad: 'Связь: плохая (подробности)',
  connPath: 'Путь',
  pathDirect: 'Напрямую',
  pathNat: 'Напрямую, через NAT',
  pathRelay: 'Через ретранслятор (TURN)',
  pathUnknown: 'Ещё не подключено',
  connRtt: 'Задержка туда и обратно',
  connIn: 'Приём',
  connOut: 'Отправка',
  connLoss: 'Потери пакетов',
  connVideo: 'Видео',
  connAudio: 'Звук',
  connNone: '—',
  /** @param {number} n */
  connMs: (n) => `${n} мс`,
  /** @param {number} n */
  connKbps: (n) => `${n} кбит/с`,
  /** @param {string} codec @param {number} w @param {number} h @param {number|null} fps */
  connVideoValue: (codec, w, h, fps) => `${codec} ${w}×${h}${fps === null ? '' : `, ${fps} кадр/с`}`,
  shareScreen: 'Показать экран (s)',
  stopShare: 'Перестать показывать (s)',
  shareFailed: 'Экран не показан (отменено, или браузер этого не умеет).',
  /** @param {string} name */
  screenOf: (name) => `Экран: ${name}`,
  settings: 'Настройки',
  settingsTitle: 'Камера и звук',
  settingsHelp: 'Изменения применяются сразу, и во время звонка тоже.',
  cameraLabel: 'Камера',
  microphoneLabel: 'Микрофон',
  speakerLabel: 'Динамик',
  noiseSuppression: 'Шумоподавление',
  deviceDefault: 'По умолчанию',
  deviceNone: 'Нет доступных',
  /** @param {number} n */
  cameraN: (n) => `Камера ${n}`,
  /** @param {number} n */
  microphoneN: (n) => `Микрофон ${n}`,
  /** @param {number} n */
  speakerN: (n) => `Динамик ${n}`,
  deviceFailed: 'Не удалось открыть это устройство (занято другим приложением?). Осталось прежнее.',
  cameraGone: 'Камера отключена: теперь используется камера по умолчанию.',
  microphoneGone: 'Микрофон отключён: теперь используется микрофон по умолчанию.',
  // Hands and reactions
  raiseHand: 'Поднять руку (h)',
  lowerHand: 'Опустить руку (h)',
  handRaised: 'Рука поднята',
  /** @param {string} name */
  handRaisedBy: (name) => `${name} поднимает руку`,
  react: 'Отправить реакцию',
  /** @param {string} name @param {string} what */
  reactedBy: (name, what) => `${name}: ${what}`,
  reactionNames: {
    '👍': 'Нравится',
    '👏': 'Аплодисменты',
    '😂': 'Смешно',
    '❤️': 'Люблю',
    '🎉': 'Ура',
    '😮': 'Ух ты',
  },

  // Chat
  chatPlaceholder: 'Сообщение для всех',
  chatSend: 'Отправить',
  chatEmpty: 'Сообщения идут напрямую к участникам и нигде не хранятся.',
  /** @param {string} name */
  joinedLine: (name) => `${name} входит в звонок`,
  /** @param {string} name */
  leftLine: (name) => `${name} выходит из звонка`,
  /** @param {string} room */
  youJoinedLine: (room) => `Вы вошли в ${room}`,
  /** @param {number} n */
  unread: (n) =>
    plural('ru', n, {
      one: `${n} непрочитанное сообщение`,
      few: `${n} непрочитанных сообщения`,
      many: `${n} непрочитанных сообщений`,
      other: `${n} непрочитанного сообщения`,
    }),

  // Файлы (напрямую между участниками, в чате)
  sendFile: 'Отправить файл всем',
  fileAccept: 'Принять',
  fileDecline: 'Отклонить',
  fileCancel: 'Отменить',
  fileSave: 'Сохранить',
  /** @param {string} name @param {string} file */
  fileOfferedBy: (name, file) => `${name} предлагает файл: ${file}`,
  fileOffered: 'Отправлено вам. Примите, чтобы скачать.',
  fileStarting: 'Начинается…',
  /** @param {string} pct */
  fileReceiving: (pct) => `Получение… ${pct}`,
  fileReceived: 'Получено. Сохраните файл, чтобы он остался у вас.',
  fileYouDeclined: 'Вы отклонили этот файл.',
  /** @param {string} limit */
  fileTooLargeIn: (limit) => `Слишком большой: эта страница принимает файлы до ${limit}.`,
  fileYouCancelled: 'Вы отменили передачу.',
  /** @param {string} name */
  fileTheyCancelled: (name) => `${name} отменяет передачу.`,
  /** @param {string} name */
  fileLeft: (name) => `${name} выходит из звонка до конца передачи.`,
  fileEnded: 'Звонок закончился до конца передачи.',
  /** @param {string} name */
  fileLost: (name) => `Связь с ${name} прервалась до конца передачи.`,
  /** @param {string} name */
  fileBadData: (name) => `${name} присылает больше, чем размер файла, поэтому передача остановлена.`,
  /** @param {string} name */
  fileTimeout: (name) => `${name} не начинает отправку. Попросите отправить файл ещё раз.`,
  /** @param {string} pct */
  fileSending: (pct) => `Отправка… ${pct}`,
  /** @param {number} n */
  fileWaiting: (n) =>
    plural('ru', n, {
      one: `Ждём, пока ${n} человек примет файл`,
      few: `Ждём, пока ${n} человека примут файл`,
      many: `Ждём, пока ${n} человек примут файл`,
      other: `Ждём, пока ${n} человека примут файл`,
    }),
  /** @param {number} n */
  fileSentTo: (n) =>
    plural('ru', n, {
      one: `Отправлено ${n} человеку`,
      few: `Отправлено ${n} людям`,
      many: `Отправлено ${n} людям`,
      other: `Отправлено ${n} человека`,
    }),
  fileNobody: 'Никто не принял файл.',
  legWaiting: 'ждём ответа',
  legDone: 'получено',
  legDeclined: 'отклонено',
  legTooLarge: 'слишком большой для получателя',
  legBusy: 'сейчас не может принять',
  legCancelled: 'отменено',
  legLeft: 'вне звонка',
  legLost: 'связь прервалась',
  legUnreadable: 'не удалось прочитать файл',
  /** @param {string} name @param {string} limit */
  fileTooLarge: (name, limit) => `«${name}» слишком большой: можно отправлять файлы до ${limit}.`,
  fileNoOne: 'В звонке пока нет никого, кому можно отправить файл.',

  moreActions: 'Ещё',
  // Change room dialog
  changeRoomTitle: 'Перейти в другую комнату',
  changeRoomHelp: 'Вы выйдете из этого звонка и войдёте в другую комнату под тем же именем.',
  move: 'Перейти',
  cancel: 'Отмена',
});
