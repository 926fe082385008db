// dialtone's browser phone: the seeds' "Twilio Client" on @twilio/voice-sdk 2.x.
// The page keeps only its Twilio number (never the password); tokens come from the API server.
"use strict";

const $ = (id) => document.getElementById(id);
// Where this script came from: the sounds sit beside it (at / when the API server serves the
// page, in assets/<digest>/ in a `dialtone web build`). Only known while the script first runs.
const assetBase = document.currentScript ? document.currentScript.src : location.href;
const state = { config: null, device: null, call: null, token: null, line: null, timer: null };

// What each SDK error means for the person holding the phone, and what to do.
const ERRORS = {
  20101: "Your sign-in is no longer valid. Sign in again.",
  20104: "Your sign-in has expired. Sign in again.",
  20151: "This phone is not allowed to receive calls. Ask your administrator.",
  31000: "Something went wrong with the phone service. Try again in a moment.",
  31005: "The connection to the phone service was lost. Check your network and try again.",
  31009: "The phone service cannot be reached. Check your network connection.",
  31202: "Your sign-in could not be verified. Sign in again.",
  31204: "Your sign-in is not valid. Sign in again.",
  31205: "Your sign-in has expired. Sign in again.",
  31208: "The microphone is blocked. Allow microphone access in the browser and try again.",
  31401: "The microphone could not be used. Allow microphone access and check it is connected.",
  31402: "No microphone was found. Connect one and try again.",
  31404: "That number could not be reached.",
  31480: "The other phone is temporarily unavailable.",
  31486: "The line is busy. Try again later.",
  31603: "The call was declined.",
  53000: "The phone service connection failed. Check your network and try again.",
  53405: "The call's audio could not connect. Check your network or firewall.",
};

function say(text) { $("status").textContent = text; }
function problem(text) {
  $("problem").textContent = text || "";
  $("problem").hidden = !text;
}
function explain(error) {
  return ERRORS[error.code] || `The phone reported a problem (${error.code || "unknown"}). Try again.`;
}

async function api(path, options) {
  const response = await fetch(state.config.apiBase + path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { status: response.status });
  return body;
}

function sounds() {
  const names = ["incoming", "outgoing", "disconnect", ..."0123456789sh".split("").map((k) => "dtmf" + k)];
  return Object.fromEntries(names.map((n) => [n, new URL(`sounds/${n}.wav`, assetBase).href]));
}

async function signIn(event) {
  event.preventDefault();
  problem("");
  say("Signing in…");
  const line = $("line").value.trim();
  try {
    const body = await api("/twilio/retrieve_capability_token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ twilioPhoneNumber: line, password: $("password").value }),
    });
    $("password").value = "";
    state.line = body.twilioPhoneNumber;
    localStorage.setItem("dialtone.line", line);  // only the number, as in the seeds
    startDevice(body.accessToken);
  } catch (error) {
    say("Signed out.");
    problem(error.status === 401 ? "Wrong number or password." :
            error.status === 429 ? error.message : `Sign-in failed: ${error.message}`);
  }
}

function startDevice(token) {
  state.token = token;
  // maxCallSignalingTimeoutMs: a call survives its signaling socket dropping for up to 30 s
  // (the SDK's signaling reconnect is opt-in; Twilio holds the call that long).
  const options = { sounds: sounds(), codecPreferences: ["pcmu", "opus"], closeProtection: true,
                    maxCallSignalingTimeoutMs: 30000 };
  if (state.config.chunderw) Object.assign(options, { chunderw: state.config.chunderw, publishEvents: false });
  const device = new Twilio.Device(token, options);
  state.device = device;
  // A signaling reconnect unregisters and re-registers: a call in progress keeps its status line.
  device.on("registered", () => { if (!state.call) say("Ready: calls to your number ring here."); showPhone(true); refreshRecent(); });
  device.on("unregistered", () => { if (!state.call) say("Signed out."); });
  device.on("error", (error) => problem(explain(error)));
  device.on("incoming", onIncoming);
  device.on("tokenWillExpire", refreshToken);
  device.audio.on("deviceChange", listDevices);
  device.register().catch((error) => problem(explain(error)));
  listDevices();
}

async function refreshToken() {
  try {
    const body = await api("/twilio/refresh_token", { method: "POST", headers: { Authorization: `Bearer ${state.token}` } });
    state.token = body.accessToken;
    state.device.updateToken(body.accessToken);
  } catch (error) {
    problem("Your sign-in is about to expire. Sign in again.");
  }
}

function showPhone(on) {
  $("signin").hidden = on;
  $("phone").hidden = !on;
  $("me").textContent = state.line || "";
}

function wireCall(call, peer) {
  state.call = call;
  $("peer").textContent = peer;
  $("incall").hidden = false;
  $("dial").querySelector("#call").disabled = true;
  call.on("accept", () => { say(`In a call with ${peer}.`); startTimer(); });
  call.on("ringing", () => say(`Calling ${peer}…`));
  call.on("volume", (input, output) => {
    $("level").value = Math.min(1, input * 4);
    $("remote-level").value = Math.min(1, output * 4);
    if (output > 0) $("remote-level").dataset.heard = "yes";  // anything heard during the call
  });
  call.on("reconnecting", () => say(`Connection lost; reconnecting the call with ${peer}…`));
  call.on("reconnected", () => { problem(""); say(`In a call with ${peer}.`); });
  call.on("disconnect", () => endCall("Call ended."));
  call.on("cancel", () => endCall("Missed call."));
  call.on("reject", () => endCall("Call declined."));
  call.on("error", (error) => { problem(explain(error)); });
}

function endCall(text) {
  state.call = null;
  clearInterval(state.timer);
  $("incall").hidden = true;
  $("incoming").hidden = true;
  $("mute").setAttribute("aria-pressed", "false");
  $("mute").textContent = "Mute";
  delete $("remote-level").dataset.heard;
  $("dial").querySelector("#call").disabled = false;
  say(text);
  setTimeout(refreshRecent, 1500);  // status callbacks arrive just after the call
}

function startTimer() {
  const started = Date.now();
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    const s = Math.floor((Date.now() - started) / 1000);
    $("timer").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }, 500);
}

function onIncoming(call) {
  const from = call.parameters.From || "unknown";
  $("incoming-from").textContent = from;
  $("incoming").hidden = false;
  say(`Incoming call from ${from}.`);
  state.incoming = call;
  call.on("cancel", () => { $("incoming").hidden = true; say("Missed call."); refreshRecent(); });
  $("accept").focus();
}

async function placeCall(event) {
  event.preventDefault();
  problem("");
  const number = $("number").value.trim();
  if (!number) { problem("Type a number to call."); return; }
  try {
    const call = await state.device.connect({ params: { To: number } });
    wireCall(call, number);
  } catch (error) {
    problem(explain(error));
  }
}

function press(key) {
  if (state.call) { state.call.sendDigits(key); return; }
  $("number").value += key;
}

async function refreshRecent() {
  if (!state.token) return;
  try {
    const { calls } = await api("/twilio/calls", { headers: { Authorization: `Bearer ${state.token}` } });
    const list = $("recent");
    list.replaceChildren(...calls.map((c) => {
      const item = document.createElement("li");
      const when = new Date(c.startedAt).toLocaleString();
      const what = c.direction === "outgoing" ? "to" : "from";
      const length = c.duration ? `, ${c.duration} s` : "";
      item.textContent = `${when}: ${what} ${c.number} (${c.status}${length}) `;
      if (c.number && c.number.startsWith("+")) {
        const back = document.createElement("button");
        back.type = "button";
        back.textContent = "Call back";
        back.addEventListener("click", () => { $("number").value = c.number; $("dial").requestSubmit(); });
        item.append(back);
      }
      return item;
    }));
  } catch (error) {
    // History is a convenience: the phone keeps working without it.
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

function signOut() {
  if (state.device) { state.device.unregister().catch(() => {}); state.device.destroy(); }
  Object.assign(state, { device: null, call: null, token: null });
  showPhone(false);
  say("Signed out.");
}

async function main() {
  state.config = await fetch("config.json").then((r) => r.json()).catch(() => ({ apiBase: "" }));
  $("line").value = localStorage.getItem("dialtone.line") || "";
  $("signin").addEventListener("submit", signIn);
  $("dial").addEventListener("submit", placeCall);
  $("pad").addEventListener("click", (e) => { if (e.target.dataset.key) press(e.target.dataset.key); });
  $("hangup").addEventListener("click", () => state.call && state.call.disconnect());
  $("mute").addEventListener("click", () => {
    if (!state.call) return;
    const muted = !state.call.isMuted();
    state.call.mute(muted);
    $("mute").setAttribute("aria-pressed", String(muted));
    $("mute").textContent = muted ? "Unmute" : "Mute";
  });
  $("accept").addEventListener("click", () => {
    const call = state.incoming;
    $("incoming").hidden = true;
    wireCall(call, call.parameters.From);
    call.accept();
  });
  $("reject").addEventListener("click", () => { state.incoming.reject(); $("incoming").hidden = true; say("Call declined."); });
  $("signout").addEventListener("click", signOut);
  $("input").addEventListener("change", (e) => state.device && state.device.audio.setInputDevice(e.target.value));
  $("output").addEventListener("change", (e) => state.device && state.device.audio.speakerDevices.set(e.target.value));
  document.addEventListener("keydown", (e) => {
    if (state.call && /^[0-9*#]$/.test(e.key) && document.activeElement !== $("number")) state.call.sendDigits(e.key);
  });
}

main();
