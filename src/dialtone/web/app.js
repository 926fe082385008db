// dialtone's browser phone: the seeds' "Twilio Client" on @twilio/voice-sdk 2.x.
// The page keeps its Twilio number (localStorage) and, for this tab only, its access token
// (sessionStorage) so a reload stays signed in; never the password.
"use strict";

const $ = (id) => document.getElementById(id);
// Where this script came from: the sounds sit beside it (at / when the API server serves the
// page, in assets/<digest>/ in a `dialtone web build`). Only known while the script first runs.
const assetBase = document.currentScript ? document.currentScript.src : location.href;
const SESSION_KEY = "dialtone.session";
const state = {
  config: null, device: null, call: null, incoming: null, token: null, expiresAt: 0,
  line: null, lineDisplay: null, timer: null, registered: false, certTrap: false,
  lastCallSid: null, calls: [], title: document.title,
};

// The one table of texts: English and Japanese (the seeds' users dial +81).
const TEXT = {
  yourNumber: { en: "Your number", ja: "あなたの番号" },
  signOut: { en: "Sign out", ja: "サインアウト" },
  signInTitle: { en: "Sign in to your phone", ja: "電話にサインイン" },
  lineLabel: { en: "Your Twilio number", ja: "Twilio の電話番号" },
  passwordLabel: { en: "Password", ja: "パスワード" },
  signIn: { en: "Sign in", ja: "サインイン" },
  phoneTitle: { en: "Phone", ja: "電話" },
  incomingTitle: { en: "Incoming call", ja: "着信" },
  answer: { en: "Answer", ja: "応答" },
  decline: { en: "Decline", ja: "拒否" },
  mute: { en: "Mute", ja: "ミュート" },
  unmute: { en: "Unmute", ja: "ミュート解除" },
  hangUp: { en: "Hang up", ja: "終了" },
  micLevel: { en: "Your microphone level", ja: "自分のマイク音量" },
  remoteLevel: { en: "The other side's level", ja: "相手の音量" },
  numberLabel: { en: "Number to call", ja: "発信先の番号" },
  numberPlaceholder: { en: "Type or paste a number", ja: "番号を入力または貼り付け" },
  erase: { en: "Delete the last digit", ja: "1文字削除" },
  pad: { en: "Dial pad", ja: "ダイヤルパッド" },
  call: { en: "Call", ja: "発信" },
  devices: { en: "Microphone and speaker", ja: "マイクとスピーカー" },
  microphone: { en: "Microphone", ja: "マイク" },
  speaker: { en: "Speaker", ja: "スピーカー" },
  recent: { en: "Recent calls", ja: "最近の通話" },
  noCalls: { en: "No calls yet.", ja: "通話履歴はまだありません。" },
  callBack: { en: (p) => `Call ${p} back`, ja: (p) => `${p} に発信` },
  signedOut: { en: "Signed out.", ja: "サインアウトしています。" },
  signingIn: { en: "Signing in…", ja: "サインインしています…" },
  ready: { en: "Ready: calls to your number ring here.", ja: "待受中：あなたの番号への電話はここで鳴ります。" },
  notConnected: { en: "Not connected to the phone service.", ja: "電話サービスに接続していません。" },
  calling: { en: (p) => `Calling ${p}…`, ja: (p) => `${p} に発信しています…` },
  ringing: { en: (p) => `Ringing ${p}…`, ja: (p) => `${p} を呼び出しています…` },
  inCallWith: { en: (p) => `In a call with ${p}.`, ja: (p) => `${p} と通話中です。` },
  reconnecting: { en: (p) => `Connection lost; reconnecting the call with ${p}…`, ja: (p) => `接続が切れました。${p} との通話を再接続しています…` },
  stateCalling: { en: "Calling…", ja: "発信中…" },
  stateRinging: { en: "Ringing…", ja: "呼び出し中…" },
  stateInCall: { en: "In a call", ja: "通話中" },
  stateAnswering: { en: "Connecting…", ja: "接続中…" },
  answering: { en: (p) => `Answering ${p}…`, ja: (p) => `${p} に応答しています…` },
  stateReconnecting: { en: "Reconnecting…", ja: "再接続中…" },
  callEnded: { en: "Call ended.", ja: "通話が終了しました。" },
  missedCall: { en: "Missed call.", ja: "不在着信がありました。" },
  callDeclined: { en: "Call declined.", ja: "着信を拒否しました。" },
  incomingFrom: { en: (p) => `Incoming call from ${p}.`, ja: (p) => `${p} から着信しています。` },
  titleRinging: { en: (p) => `📞 ${p} is calling`, ja: (p) => `📞 ${p} から着信` },
  typeNumber: { en: "Type a number to call.", ja: "発信する番号を入力してください。" },
  wrongPassword: { en: "Wrong number or password.", ja: "番号またはパスワードが違います。" },
  signInFailed: { en: (m) => `Sign-in failed: ${m}`, ja: (m) => `サインインできませんでした：${m}` },
  aboutToExpire: { en: "Your sign-in is about to expire. Sign in again.", ja: "サインインの有効期限が近づいています。もう一度サインインしてください。" },
  certificate: {
    en: (host) => `Your browser does not yet trust the phone service at ${host} (its development certificate). Open the link below, accept the certificate warning there, and come back: the phone then signs in by itself.`,
    ja: (host) => `ブラウザがまだ ${host} の電話サービス（開発用の証明書）を信頼していません。下のリンクを開き、証明書の警告で続行を選んでから戻ってください。電話は自動でサインインします。`,
  },
  certificateLink: { en: (host) => `Open https://${host}/ and accept its certificate`, ja: (host) => `https://${host}/ を開いて証明書を受け入れる` },
  unknownError: { en: (c) => `The phone reported a problem (${c}). Try again.`, ja: (c) => `電話で問題が発生しました（${c}）。もう一度お試しください。` },
  // Recent calls: direction and outcome.
  outgoing: { en: "Outgoing", ja: "発信" },
  incoming: { en: "Incoming", ja: "着信" },
  answered: { en: "Answered", ja: "通話" },
  missed: { en: "Missed", ja: "不在着信" },
  declined: { en: "Declined", ja: "拒否" },
  busy: { en: "Busy", ja: "話し中" },
  "no-answer": { en: "No answer", ja: "応答なし" },
  canceled: { en: "Cancelled", ja: "キャンセル" },
  refused: { en: "Not allowed", ja: "発信不可" },
  failed: { en: "Failed", ja: "失敗" },
  ongoing: { en: "In progress", ja: "通話中" },
  unknown: { en: "Outcome unknown", ja: "結果不明" },
  refusedCostly: { en: "Calls to premium-rate and shared-cost numbers are not allowed.", ja: "有料番号・共同課金番号には発信できません。" },
  refusedCountry: { en: (c) => `Calls to country code +${c} are not allowed from this phone.`, ja: (c) => `この電話から国番号 +${c} には発信できません。` },
  refusedInvalid: { en: "The number you dialled is not a valid phone number.", ja: "ダイヤルした番号は有効な電話番号ではありません。" },
  refusedSelf: { en: "A phone cannot call itself.", ja: "自分の番号には発信できません。" },
  refusedCallerId: { en: "The caller number does not belong to this phone.", ja: "発信者番号がこの電話のものではありません。" },
  refusedOther: { en: (r) => `The call was not allowed: ${r}.`, ja: (r) => `発信できませんでした：${r}` },
  callRefused: { en: (p, why) => `The call to ${p} was not placed. ${why}`, ja: (p, why) => `${p} への発信はできませんでした。${why}` },
  duration: {
    en: (s) => (s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`),
    ja: (s) => (s < 60 ? `${s}秒` : `${Math.floor(s / 60)}分${s % 60}秒`),
  },
  // What each SDK error means for the person holding the phone, and what to do.
  e20101: { en: "Your sign-in is no longer valid. Sign in again.", ja: "サインインが無効になりました。もう一度サインインしてください。" },
  e20104: { en: "Your sign-in has expired. Sign in again.", ja: "サインインの有効期限が切れました。もう一度サインインしてください。" },
  e20151: { en: "This phone is not allowed to receive calls. Ask your administrator.", ja: "この電話は着信を受けられません。管理者に確認してください。" },
  e31000: { en: "Something went wrong with the phone service. Try again in a moment.", ja: "電話サービスで問題が発生しました。しばらくしてからもう一度お試しください。" },
  e31005: { en: "The connection to the phone service was lost. Check your network and try again.", ja: "電話サービスとの接続が切れました。ネットワークを確認してもう一度お試しください。" },
  e31009: { en: "The phone service cannot be reached. Check your network connection.", ja: "電話サービスに接続できません。ネットワーク接続を確認してください。" },
  e31202: { en: "Your sign-in could not be verified. Sign in again.", ja: "サインインを確認できませんでした。もう一度サインインしてください。" },
  e31204: { en: "Your sign-in is not valid. Sign in again.", ja: "サインインが無効です。もう一度サインインしてください。" },
  e31205: { en: "Your sign-in has expired. Sign in again.", ja: "サインインの有効期限が切れました。もう一度サインインしてください。" },
  e31208: { en: "The microphone is blocked. Allow microphone access in the browser and try again.", ja: "マイクがブロックされています。ブラウザでマイクを許可してもう一度お試しください。" },
  e31401: { en: "The microphone could not be used. Allow microphone access and check it is connected.", ja: "マイクを使えませんでした。マイクの許可と接続を確認してください。" },
  e31402: { en: "No microphone was found. Connect one and try again.", ja: "マイクが見つかりません。接続してもう一度お試しください。" },
  e31404: { en: "That number could not be reached.", ja: "その番号につながりませんでした。" },
  e31480: { en: "The other phone is temporarily unavailable.", ja: "相手の電話は一時的に利用できません。" },
  e31486: { en: "The line is busy. Try again later.", ja: "話し中です。後でおかけ直しください。" },
  e31603: { en: "The call was declined.", ja: "通話は拒否されました。" },
  e53000: { en: "The phone service connection failed. Check your network and try again.", ja: "電話サービスへの接続に失敗しました。ネットワークを確認してもう一度お試しください。" },
  e53405: { en: "The call's audio could not connect. Check your network or firewall.", ja: "通話の音声を接続できませんでした。ネットワークやファイアウォールを確認してください。" },
};
// Sign-in is over when the SDK says the token is bad: forget it, ask for the password.
const SIGN_IN_AGAIN = new Set([20101, 20104, 31202, 31204, 31205]);

// The first of the browser's languages that the table has; English otherwise.
const LANG = (navigator.languages || [navigator.language || "en"])
  .map((l) => String(l).slice(0, 2).toLowerCase())
  .find((l) => l === "en" || l === "ja") || "en";

function t(key, ...args) {
  const entry = TEXT[key];
  if (!entry) return key;
  const text = entry[LANG] ?? entry.en;
  return typeof text === "function" ? text(...args) : text;
}

function translatePage() {
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t(el.dataset.tLabel));
  for (const el of document.querySelectorAll("[data-t-placeholder]")) el.placeholder = t(el.dataset.tPlaceholder);
}

function say(text) { $("status").textContent = text; }
function problem(text, link) {
  $("problem-text").textContent = text || "";
  $("problem").hidden = !text;
  $("problem-more").hidden = !link;
  if (link) { $("problem-link").href = link.href; $("problem-link").textContent = link.text; }
}
function explain(error) {
  return TEXT[`e${error.code}`] ? t(`e${error.code}`) : t("unknownError", error.code || "unknown");
}

async function api(path, options) {
  const response = await fetch(state.config.apiBase + path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { status: response.status });
  return body;
}
const bearer = () => ({ Authorization: `Bearer ${state.token}` });

function sounds() {
  const names = ["incoming", "outgoing", "disconnect", ..."0123456789sh".split("").map((k) => "dtmf" + k)];
  return Object.fromEntries(names.map((n) => [n, new URL(`sounds/${n}.wav`, assetBase).href]));
}

// Numbers as people at home write them, by Google's numbering plans (libphonenumber-js): the
// line's own country's numbers in national format ("090-5987-6543"), others international;
// E.164 on hover and on copy. Without the library (not installed), the server's formats.
const plans = window.libphonenumber || null;
function homeCountry() {
  const line = plans && state.line && plans.parsePhoneNumberFromString(state.line);
  return (line && line.country) || undefined;
}
function formatNumber(e164) {
  const number = plans && e164 && e164.startsWith("+") && plans.parsePhoneNumberFromString(e164);
  if (!number || !number.isValid()) return null;
  return number.country === homeCountry() ? number.formatNational() : number.formatInternational();
}
function numberElement(e164, display, tag = "span") {
  const el = document.createElement(tag);
  el.className = "number";
  el.textContent = display || e164;
  if (e164 && e164.startsWith("+")) { el.title = e164; el.dataset.e164 = e164; }
  return el;
}
function displayOf(e164) {
  const formatted = formatNumber(e164);
  if (formatted) return formatted;
  const known = state.calls.find((c) => c.number === e164 && c.display);
  if (known) return known.display;
  return e164 === state.line ? state.lineDisplay || e164 : e164;
}
// What is typed, laid out as it would be written ("0905" → "090-5"), dialled from the line's
// country; tones (* #) and anything the plans cannot lay out stay as typed.
function asTyped(text) {
  const cleaned = cleanNumber(text);
  if (!plans || !cleaned || /[*#]/.test(cleaned)) return cleaned;
  return new plans.AsYouType(homeCountry()).input(cleaned);
}
// The number a typed text dials, in E.164, when the plans know it for a valid number.
function e164Of(text) {
  const number = plans && plans.parsePhoneNumberFromString(cleanNumber(text), homeCountry());
  return number && number.isValid() ? number.number : null;
}
// What a person pastes ("+81 90-5987-6543", "(090) 5987 6543", full-width digits): the
// digits, * and #, and a leading +.
function cleanNumber(text) {
  const plain = String(text).normalize("NFKC").trim().replace(/^tel:/i, "");
  const digits = plain.replace(/[^0-9*#]/g, "");
  return (plain.startsWith("+") ? "+" : "") + digits;
}

// --- Sign-in, kept for this tab ----------------------------------------------------------

function saveSession() {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({
    accessToken: state.token, expiresAt: state.expiresAt, line: state.line, lineDisplay: state.lineDisplay,
  }));
}
function storedSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    // A token about to expire is not worth registering with: sign in again instead.
    if (saved && saved.accessToken && saved.expiresAt - Date.now() > 30000) return saved;
  } catch (error) { /* not ours or damaged: ignore */ }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}
function takeTokens(body) {
  state.token = body.accessToken;
  state.expiresAt = Date.now() + (body.ttl || 3600) * 1000;
  state.line = body.twilioPhoneNumber || state.line;
  saveSession();
}

function askNotificationsOnce() {
  // Only ever from a click or a key press (browsers ignore or punish other requests).
  if (!("Notification" in window) || Notification.permission !== "default") return;
  if (localStorage.getItem("dialtone.notifications-asked")) return;
  localStorage.setItem("dialtone.notifications-asked", "yes");
  Promise.resolve(Notification.requestPermission()).catch(() => {});
}

async function signIn(event) {
  event.preventDefault();
  askNotificationsOnce();
  problem("");
  say(t("signingIn"));
  const line = $("line").value.trim();
  try {
    const body = await api("/twilio/retrieve_capability_token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ twilioPhoneNumber: line, password: $("password").value }),
    });
    localStorage.setItem("dialtone.line", line);  // only the number, as in the seeds
    takeTokens(body);
    startDevice();
  } catch (error) {
    say(t("signedOut"));
    problem(error.status === 401 ? t("wrongPassword") :
            error.status === 429 ? error.message : t("signInFailed", error.message));
  }
}

function startDevice() {
  if (state.device) state.device.destroy();
  state.registered = false;
  // maxCallSignalingTimeoutMs: a call survives its signaling socket dropping for up to 30 s
  // (the SDK's signaling reconnect is opt-in; Twilio holds the call that long).
  const options = { sounds: sounds(), codecPreferences: ["pcmu", "opus"], closeProtection: true,
                    maxCallSignalingTimeoutMs: 30000 };
  if (state.config.chunderw) Object.assign(options, { chunderw: state.config.chunderw, publishEvents: false });
  const device = new Twilio.Device(state.token, options);
  state.device = device;
  // A signaling reconnect unregisters and re-registers: a call in progress keeps its status line.
  device.on("registered", () => {
    state.registered = true;
    state.certTrap = false;
    $("password").value = "";  // only now: a failed connection keeps it for another try
    problem("");
    if (!state.call) say(t("ready"));
    showPhone(true);
    refreshRecent();
  });
  device.on("unregistered", () => { if (!state.call && state.device === device) say(t("signedOut")); });
  device.on("error", (error) => onDeviceError(device, error));
  device.on("incoming", onIncoming);
  device.on("tokenWillExpire", refreshToken);
  device.audio.on("deviceChange", listDevices);
  device.register().catch(() => {});  // failures arrive as "error" events too
  listDevices();
}

function onDeviceError(device, error) {
  if (device !== state.device) return;
  if (SIGN_IN_AGAIN.has(error.code)) {
    forgetSession();
    problem(explain(error));
    return;
  }
  // Before the first registration, a connection failure against a local emulator is most
  // often its self-signed certificate, which the browser refuses silently for WebSockets.
  const connection = (error.code >= 31000 && error.code <= 31009) || (error.code >= 53000 && error.code < 54000);
  if (!state.registered && connection && state.config.chunderw) {
    say(t("notConnected"));
    checkCertificate();
    return;
  }
  problem(explain(error));
}

function signalingPage() {
  return `https://${state.config.chunderw}/?phone=${encodeURIComponent(location.href)}`;
}

// Any answer at all over https means the browser trusts the certificate (no-cors: the body is
// not read); a TypeError means it does not, or nothing listens there.
async function signalingReachable() {
  try {
    await fetch(`https://${state.config.chunderw}/`, { mode: "no-cors", cache: "no-store" });
    return true;
  } catch (error) {
    return false;
  }
}

async function checkCertificate() {
  if (await signalingReachable()) {
    problem(t("e31005"));
    return;
  }
  state.certTrap = true;
  const host = state.config.chunderw;
  problem(t("certificate", host), { href: signalingPage(), text: t("certificateLink", host) });
}

// Back from accepting the certificate in another tab: try again without a click.
async function retryAfterCertificate() {
  if (!state.certTrap || !state.token || document.hidden) return;
  if (await signalingReachable()) { state.certTrap = false; say(t("signingIn")); startDevice(); }
}

async function refreshToken() {
  try {
    const body = await api("/twilio/refresh_token", { method: "POST", headers: bearer() });
    takeTokens(body);
    state.device.updateToken(body.accessToken);
  } catch (error) {
    problem(t("aboutToExpire"));
  }
}

function showPhone(on) {
  $("signin").hidden = on;
  $("phone").hidden = !on;
  $("me-box").hidden = !on;
  $("me").replaceChildren(on ? numberElement(state.line, displayOf(state.line)) : "");
}

function forgetSession() {
  sessionStorage.removeItem(SESSION_KEY);
  if (state.device) { state.device.unregister().catch(() => {}); state.device.destroy(); }
  Object.assign(state, { device: null, call: null, incoming: null, token: null, registered: false, certTrap: false });
  showPhone(false);
  say(t("signedOut"));
}

// --- Calls ----------------------------------------------------------------------------------

// What the call card and the live region show: calling → ringing → in a call (timer only then).
function callState(name, peer) {
  const card = { calling: "stateCalling", ringing: "stateRinging", answering: "stateAnswering", inCall: "stateInCall", reconnecting: "stateReconnecting" };
  const spoken = { calling: "calling", ringing: "ringing", answering: "answering", inCall: "inCallWith", reconnecting: "reconnecting" };
  $("incall").dataset.state = name;
  $("call-state").textContent = t(card[name]);
  say(t(spoken[name], peer));
}

function wireCall(call, peer, peerE164) {
  state.call = call;
  $("peer").replaceChildren(numberElement(peerE164, peer));
  $("incall").hidden = false;
  $("timer").hidden = true;
  $("timer").textContent = "0:00";
  $("call").disabled = true;
  // The SDK's `accept` on an outgoing call means media is up: with answerOnBridge on the
  // server's <Dial>, that is when the callee picks up; `ringing` comes before it.
  call.on("ringing", () => { if (state.call === call && $("incall").dataset.state === "calling") callState("ringing", peer); });
  call.on("accept", () => { callState("inCall", peer); startTimer(); });
  call.on("volume", (input, output) => {
    $("level").value = Math.min(1, input * 4);
    $("remote-level").value = Math.min(1, output * 4);
    if (output > 0) $("remote-level").dataset.heard = "yes";  // anything heard during the call
  });
  call.on("reconnecting", () => callState("reconnecting", peer));
  call.on("reconnected", () => { problem(""); callState("inCall", peer); });
  call.on("disconnect", () => endCall(t("callEnded")));
  call.on("cancel", () => endCall(t("missedCall")));
  call.on("reject", () => endCall(t("callDeclined")));
  call.on("error", (error) => { problem(explain(error)); });
}

function endCall(text) {
  state.call = null;
  clearInterval(state.timer);
  $("incall").hidden = true;
  delete $("incall").dataset.state;
  $("incoming").hidden = true;
  setMuted(false);
  delete $("remote-level").dataset.heard;
  $("call").disabled = false;
  say(text);
  restoreTitle();
  // Status callbacks arrive just after the call; a refusal's reason comes with them.
  setTimeout(refreshRecent, 1000);
  setTimeout(refreshRecent, 3000);
}

function startTimer() {
  const started = Date.now();
  clearInterval(state.timer);
  $("timer").hidden = false;
  state.timer = setInterval(() => {
    const s = Math.floor((Date.now() - started) / 1000);
    $("timer").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }, 500);
}

function setMuted(muted) {
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute-text").textContent = t(muted ? "unmute" : "mute");
  $("mute-icon").setAttribute("href", muted ? "#i-mic-off" : "#i-mic");
}

function restoreTitle() { document.title = state.title; }

function onIncoming(call) {
  const from = call.parameters.From || "unknown";
  const shown = displayOf(from);
  state.incoming = call;
  $("incoming-from").replaceChildren(numberElement(from, shown));
  $("incoming").hidden = false;
  $("call").disabled = true;
  say(t("incomingFrom", shown));
  document.title = t("titleRinging", shown);
  let notice = null;
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    notice = new Notification(t("incomingTitle"), { body: shown, tag: "dialtone-incoming", requireInteraction: true });
    notice.onclick = () => { window.focus(); notice.close(); };
  }
  const done = () => {
    if (notice) notice.close();
    if (state.incoming === call) state.incoming = null;
    restoreTitle();
  };
  call.on("cancel", () => {
    done();
    $("incoming").hidden = true;
    if (!state.call) $("call").disabled = false;
    say(t("missedCall"));
    refreshRecent();
  });
  call.on("accept", done);
  call.on("reject", () => { done(); setTimeout(refreshRecent, 1000); });
  $("accept").focus();
}

async function placeCall(event) {
  event.preventDefault();
  if (state.call || state.incoming) return;
  askNotificationsOnce();
  problem("");
  const typed = $("number").value.trim();
  if (!typed) { problem(t("typeNumber")); $("number").focus(); return; }
  $("call").disabled = true;
  try {
    const call = await state.device.connect({ params: { To: cleanNumber(typed) } });
    state.lastCallSid = null;
    const e164 = e164Of(typed);
    const peer = e164 ? displayOf(e164) : typed;
    wireCall(call, peer, e164);
    callState("calling", peer);
    // The parent call's SID is known once the service acknowledges the call.
    const remember = () => { state.lastCallSid = call.parameters.CallSid || null; };
    call.on("ringing", remember);
    call.on("accept", remember);
  } catch (error) {
    $("call").disabled = false;
    problem(explain(error));
  }
}

function flashKey(key) {
  const button = $("pad").querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (!button) return;
  button.classList.add("pressed");
  setTimeout(() => button.classList.remove("pressed"), 150);
}

function press(key) {
  if (state.call) { state.call.sendDigits(key); return; }
  const input = $("number");
  input.value = asTyped(input.value + key);
}

function erase() {
  const input = $("number");
  input.value = asTyped(cleanNumber(input.value).slice(0, -1));
}

// Typing in the field lays the number out too, unless the caret is inside it (editing).
function onNumberInput(event) {
  const input = event.target;
  if (input.selectionStart !== input.value.length) return;
  const laidOut = asTyped(input.value);
  if (laidOut !== input.value) input.value = laidOut;
}

// The keyboard dials, wherever the focus is (except another field): digits, * # +,
// Backspace, Enter to call; during a call, digits are tones.
function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || $("phone").hidden) return;
  const target = event.target;
  const field = target.closest && target.closest("input, select, textarea");
  if (state.call) {
    if (/^[0-9*#]$/.test(event.key) && !field) { state.call.sendDigits(event.key); flashKey(event.key); }
    return;
  }
  if (field) return;  // the number field types by itself; Enter there submits the form
  if (/^[0-9*#+]$/.test(event.key)) {
    event.preventDefault();
    press(event.key);
    flashKey(event.key);
  } else if (event.key === "Backspace") {
    event.preventDefault();
    erase();
  } else if (event.key === "Enter" && !target.closest("button, a, summary")) {
    event.preventDefault();
    $("dial").requestSubmit();
  }
}

function onPaste(event) {
  if ($("phone").hidden || state.call) return;
  const target = event.target;
  const number = $("number");
  if (target !== number && target.closest && target.closest("input, select, textarea")) return;
  const text = (event.clipboardData || window.clipboardData).getData("text");
  const cleaned = cleanNumber(text);
  if (!cleaned) return;
  event.preventDefault();
  if (target === number && (number.selectionStart !== number.value.length || number.selectionEnd !== number.value.length)) {
    const { selectionStart: start, selectionEnd: end, value } = number;
    number.value = value.slice(0, start) + cleaned + value.slice(end);
    number.setSelectionRange(start + cleaned.length, start + cleaned.length);
  } else {
    number.value = asTyped((target === number ? number.value : "") + cleaned);
  }
}

// Copying a shown number copies its E.164 form.
function onCopy(event) {
  const selection = document.getSelection();
  const node = selection && selection.anchorNode;
  const el = node && (node.nodeType === 1 ? node : node.parentElement);
  const number = el && el.closest("[data-e164]");
  if (!number || !event.clipboardData) return;
  event.clipboardData.setData("text/plain", number.dataset.e164);
  event.preventDefault();
}

// --- Recent calls -------------------------------------------------------------------------------

const OUTCOME_ICONS = {
  answered: null, missed: "i-missed", declined: "i-declined", busy: "i-busy", "no-answer": "i-missed",
  canceled: "i-declined", refused: "i-refused", failed: "i-failed", ongoing: null,
};

function refusalText(entry) {
  const refusal = entry.refusal || {};
  switch (refusal.kind) {
    case "costly": return t("refusedCostly");
    case "country": return t("refusedCountry", refusal.countryCode);
    case "invalid": return t("refusedInvalid");
    case "self": return t("refusedSelf");
    case "caller-id": return t("refusedCallerId");
    default: return t("refusedOther", refusal.reason || entry.status);
  }
}

function icon(id, className) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", `icon ${className || ""}`);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#${id}`);
  svg.append(use);
  return svg;
}

function dayLabel(date, now) {
  const startOf = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((startOf(date) - startOf(now)) / 86400000);
  if (days === 0 || days === -1) {
    const text = new Intl.RelativeTimeFormat(LANG, { numeric: "auto" }).format(days, "day");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  return new Intl.DateTimeFormat(LANG, { weekday: "short", month: "short", day: "numeric" }).format(date);
}

function whenLabel(date, now) {
  const seconds = Math.round((now - date) / 1000);
  const relative = new Intl.RelativeTimeFormat(LANG, { numeric: "auto" });
  if (seconds < 60) return relative.format(0, "second");
  if (seconds < 3600) return relative.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 6 * 3600) return relative.format(-Math.floor(seconds / 3600), "hour");
  return new Intl.DateTimeFormat(LANG, { hour: "numeric", minute: "2-digit" }).format(date);
}

function renderRecent() {
  const now = new Date();
  const groups = new Map();
  for (const entry of state.calls) {
    const date = new Date(entry.startedAt);
    const day = dayLabel(date, now);
    if (!groups.has(day)) groups.set(day, []);
    groups.get(day).push([entry, date]);
  }
  $("recent-empty").hidden = state.calls.length > 0;
  $("recent").replaceChildren(...[...groups].map(([day, entries]) => {
    const group = document.createElement("section");
    group.className = "day";
    const heading = document.createElement("h3");
    heading.textContent = day;
    const list = document.createElement("ol");
    list.append(...entries.map(([entry, date]) => recentItem(entry, date, now)));
    group.append(heading, list);
    return group;
  }));
}

function recentItem(entry, date, now) {
  const item = document.createElement("li");
  // How it ended comes from the server (the <Dial>'s DialCallStatus); rows from before it
  // recorded that have none.
  const outcome = entry.outcome || "";
  item.className = `call ${entry.direction} ${outcome}`;
  item.dataset.callSid = entry.callSid;
  item.dataset.outcome = outcome;
  const direction = t(entry.direction);
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.append(icon(OUTCOME_ICONS[outcome] || (entry.direction === "outgoing" ? "i-out" : "i-in")));
  const main = document.createElement("div");
  main.className = "what";
  const who = numberElement(entry.number, displayOf(entry.number), "strong");
  const detail = document.createElement("span");
  detail.className = "detail";
  const parts = outcome ? [direction, t(outcome)] : [direction];
  // Talk time: how long the other party was connected (else the phone's own leg).
  const talked = entry.dialDuration ?? entry.duration;
  if (outcome === "answered" && talked) parts.push(t("duration", talked));
  detail.textContent = parts.join(" · ");
  main.append(who, detail);
  if (outcome === "refused") {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = refusalText(entry);
    main.append(why);
  }
  const when = document.createElement("time");
  when.dateTime = entry.startedAt;
  when.title = date.toLocaleString(LANG);
  when.textContent = whenLabel(date, now);
  item.append(badge, main, when);
  if (entry.number && entry.number.startsWith("+")) {
    const back = document.createElement("button");
    back.type = "button";
    back.className = "quiet back";
    back.setAttribute("aria-label", t("callBack", displayOf(entry.number)));
    back.append(icon("i-phone"));
    back.addEventListener("click", () => {
      if (state.call) return;
      $("number").value = displayOf(entry.number);
      $("dial").requestSubmit();
    });
    item.append(back);
  }
  return item;
}

async function refreshRecent() {
  if (!state.token) return;
  let body;
  try {
    body = await api("/twilio/calls", { headers: bearer() });
  } catch (error) {
    return;  // history is a convenience: the phone keeps working without it
  }
  state.calls = body.calls || [];
  if (body.line && body.line.display) {
    state.lineDisplay = body.line.display;
    saveSession();
    if (!$("phone").hidden) $("me").replaceChildren(numberElement(state.line, displayOf(state.line)));
  }
  renderRecent();
  // A refused call is spoken by the service; the reason is also shown here, once.
  const last = state.lastCallSid && state.calls.find((c) => c.callSid === state.lastCallSid);
  if (last && last.outcome === "refused" && !state.call) {
    state.lastCallSid = null;
    problem(t("callRefused", displayOf(last.number), refusalText(last)));
  }
}

function listDevices() {
  const audio = state.device && state.device.audio;
  if (!audio) return;
  for (const [select, devices, current] of [
    [$("input"), audio.availableInputDevices, audio.inputDevice && audio.inputDevice.deviceId],
    [$("output"), audio.availableOutputDevices, null],
  ]) {
    select.replaceChildren(...[...devices.values()].map((d) => new Option(d.label || d.deviceId, d.deviceId, false, d.deviceId === current)));
  }
}

async function main() {
  translatePage();
  say(t("signedOut"));
  state.config = await fetch("config.json").then((r) => r.json()).catch(() => ({ apiBase: "" }));
  $("line").value = localStorage.getItem("dialtone.line") || "";
  $("signin").addEventListener("submit", signIn);
  $("dial").addEventListener("submit", placeCall);
  $("number").addEventListener("input", onNumberInput);
  $("pad").addEventListener("click", (e) => {
    const key = e.target.closest("[data-key]");
    if (key) press(key.dataset.key);
  });
  $("erase").addEventListener("click", erase);
  $("hangup").addEventListener("click", () => state.call && state.call.disconnect());
  $("mute").addEventListener("click", () => {
    if (!state.call) return;
    const muted = !state.call.isMuted();
    state.call.mute(muted);
    setMuted(muted);
  });
  $("accept").addEventListener("click", () => {
    const call = state.incoming;
    if (!call) return;
    $("incoming").hidden = true;
    const from = call.parameters.From || "unknown";
    wireCall(call, displayOf(from), from);
    callState("answering", displayOf(from));
    call.accept();
  });
  $("reject").addEventListener("click", () => {
    if (!state.incoming) return;
    state.incoming.reject();
    $("incoming").hidden = true;
    if (!state.call) $("call").disabled = false;
    say(t("callDeclined"));
    setTimeout(refreshRecent, 1500);
  });
  $("signout").addEventListener("click", forgetSession);
  $("input").addEventListener("change", (e) => state.device && state.device.audio.setInputDevice(e.target.value));
  $("output").addEventListener("change", (e) => state.device && state.device.audio.speakerDevices.set(e.target.value));
  document.addEventListener("keydown", onKey);
  document.addEventListener("paste", onPaste);
  document.addEventListener("copy", onCopy);
  window.addEventListener("focus", retryAfterCertificate);
  document.addEventListener("visibilitychange", retryAfterCertificate);
  setInterval(() => { if (state.calls.length) renderRecent(); }, 60000);  // "5 min ago" moves on

  const saved = storedSession();
  if (saved) {
    Object.assign(state, { token: saved.accessToken, expiresAt: saved.expiresAt, line: saved.line, lineDisplay: saved.lineDisplay });
    say(t("signingIn"));
    startDevice();
  }
}

main();
