// The dev console: an external phone in the browser, the live list of calls, and a call's
// sequence diagram. Everything shown comes from the emulator; nothing is inserted as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  config: null, device: null, call: null, incoming: null, number: null,
  calls: new Map(), // sid → call (top-level calls only), for the live list
  picked: null, family: new Set(), follow: true, data: null, timer: null, redraw: null,
};
const STATUS_WORDS = {
  queued: "queued", initiated: "calling", ringing: "ringing", "in-progress": "in a call",
  completed: "completed", busy: "busy", failed: "failed", "no-answer": "no answer", canceled: "canceled",
};

function status(text) { $("status").textContent = text; }

function sounds() {
  const names = ["incoming", "outgoing", "disconnect", ..."0123456789sh".split("").map((k) => "dtmf" + k)];
  return Object.fromEntries(names.map((n) => [n, `/console/sounds/${n}.wav`]));
}

// -- the external phone ----------------------------------------------------------------------

// One call at a time: the Call button (and switching numbers) wait until it is over.
function controls() {
  const busy = Boolean(state.call || state.incoming);
  $("call").disabled = busy || !state.device;
  $("become").disabled = busy;
  $("call-hint").hidden = !busy;
}

async function become() {
  const number = $("me").value.trim();
  const response = await fetch(`/emulator/phones/${encodeURIComponent(number)}/token`, { method: "POST" });
  const body = await response.json();
  if (!response.ok) { status(body.message || "That number cannot be used."); return; }
  if (state.device) state.device.destroy();
  status(`Connecting as ${body.number}…`);
  // maxCallSignalingTimeoutMs: the call survives a dropped signaling socket, as on the phone.
  const device = new Twilio.Device(body.token, { chunderw: state.config.chunderw, publishEvents: false, sounds: sounds(),
                                                 maxCallSignalingTimeoutMs: 30000 });
  state.device = device;
  state.number = body.number;
  device.on("registered", () => { status(`Ready: you are ${body.number}.`); $("controls").hidden = false; controls(); });
  device.on("error", (e) => status(`Phone error ${e.code}: ${e.message}`));
  device.on("incoming", (call) => {
    state.incoming = call;
    status(`Incoming call from ${call.parameters.From}.`);
    $("answer").hidden = $("reject").hidden = false;
    controls();
    call.on("cancel", () => idle("Missed call."));
    call.on("disconnect", () => idle("Call ended."));
  });
  await device.register();
}

function startTimer() {
  const started = Date.now();
  $("clock-line").hidden = false;
  const tick = () => {
    const s = Math.floor((Date.now() - started) / 1000);
    $("timer").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };
  tick();
  state.timer = setInterval(tick, 1000);
}

function stopTimer() {
  clearInterval(state.timer);
  state.timer = null;
  $("clock-line").hidden = true;
}

// Honest states: "Calling…" until Twilio says it rings, "Ringing…" until the far end answers.
function follow(call, peer, outgoing) {
  state.call = call;
  state.incoming = null;
  $("hangup").hidden = false;
  $("answer").hidden = $("reject").hidden = true;
  controls();
  if (outgoing) {
    status(`Calling ${peer}…`);
    call.on("ringing", () => { if (state.call === call && !state.timer) status(`Ringing ${peer}…`); });
  }
  call.on("accept", () => { status(`In a call with ${peer}.`); startTimer(); });
  call.on("volume", (input, output) => {
    $("remote-level").value = Math.min(1, output * 4);
    if (output > 0) $("remote-level").dataset.heard = "yes";
  });
  call.on("disconnect", () => idle("Call ended."));
  call.on("cancel", () => idle("Call canceled."));
  call.on("reject", () => idle("Call declined."));
  call.on("error", (e) => status(`Call error ${e.code}: ${e.message}`));
}

function idle(text) {
  state.call = state.incoming = null;
  $("hangup").hidden = $("answer").hidden = $("reject").hidden = true;
  $("remote-level").value = 0;
  stopTimer();
  controls();
  status(text);
}

// -- the call list -----------------------------------------------------------------------------

function listItem(call) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.sid = call.sid;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = `${call.from} → ${call.to}`;
  const badge = document.createElement("span");
  badge.className = "badge";
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = new Date(call.created).toLocaleTimeString();
  const sid = document.createElement("span");
  sid.className = "when";
  sid.textContent = call.sid.slice(0, 12) + "…";
  sid.title = call.sid;
  button.append(who, badge, when, sid);
  button.addEventListener("click", () => { state.follow = false; pick(call.sid); });
  const item = document.createElement("li");
  item.append(button);
  return item;
}

function setStatus(sid, value) {
  const call = state.calls.get(sid);
  if (!call) return;
  call.status = value;
  const badge = document.querySelector(`#calls button[data-sid="${CSS.escape(sid)}"] .badge`);
  if (badge) { badge.dataset.status = value; badge.textContent = STATUS_WORDS[value] || value; }
  if (sid === state.picked) $("picked").textContent = `${call.from} → ${call.to}, ${STATUS_WORDS[value] || value}`;
}

async function refreshCalls() {
  const { calls } = await fetch("/console/calls.json").then((r) => r.json());
  const parents = calls.filter((c) => !c.parent).slice(0, 30);
  state.calls = new Map(parents.map((c) => [c.sid, c]));
  $("calls").replaceChildren(...parents.map(listItem));
  for (const c of parents) setStatus(c.sid, c.status);
  const wanted = state.follow && parents.length ? parents[0].sid : state.picked;
  if (wanted && wanted !== state.picked) await pick(wanted);
  else markPicked();
}

function markPicked() {
  for (const button of document.querySelectorAll("#calls button")) {
    button.setAttribute("aria-current", String(button.dataset.sid === state.picked));
  }
}

// -- the inspector -----------------------------------------------------------------------------

async function pick(sid) {
  state.picked = sid;
  markPicked();
  const url = new URL(location.href);
  url.searchParams.set("call", sid);
  history.replaceState(null, "", url);
  await showDiagram();
}

async function showDiagram() {
  const sid = state.picked;
  const response = await fetch(`/console/calls/${encodeURIComponent(sid)}/diagram.json`);
  if (sid !== state.picked) return;
  if (!response.ok) { $("diagram").replaceChildren(); $("details").replaceChildren(); $("export").disabled = true; return; }
  const data = await response.json();
  state.data = data;
  state.family = new Set(data.steps.map((s) => s.call_sid).concat([data.call_sid]));
  Diagram.draw($("diagram"), data);
  $("export").disabled = false;
  details(data);
  setStatus(data.call_sid, data.status);
}

// Webhooks in full: parameters, signature, the answer, and the request as a curl command.
function details(data) {
  const open = new Set([...document.querySelectorAll("#details details[open]")].map((d) => d.dataset.key));
  const items = [];
  data.steps.forEach((step, index) => {
    if (!step.webhook) return;
    const answer = data.steps[index + 1];
    const item = document.createElement("details");
    item.dataset.key = `${step.call_sid}:${step.seq}`;
    item.open = open.has(item.dataset.key);
    const summary = document.createElement("summary");
    summary.textContent = `${index + 1}. ${step.text}`;
    const request = document.createElement("pre");
    request.textContent = `${step.webhook.method} ${step.webhook.url}\nX-Twilio-Signature: ${step.webhook.signature}\n` +
                          `parameters: ${JSON.stringify(step.webhook.parameters, null, 2)}`;
    const reply = document.createElement("pre");
    reply.textContent = answer ? `${answer.text}${answer.twiml ? "\n\n" + answer.twiml : ""}` : "";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-curl";
    copy.textContent = "Copy as curl";
    copy.setAttribute("aria-label", `Copy request ${index + 1} as a curl command`);
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(step.webhook.curl);
        copy.textContent = "Copied";
        $("copied").textContent = `Request ${index + 1} copied as a curl command.`;
      } catch {
        copy.textContent = "Copy failed: select the command below";
      }
      setTimeout(() => { copy.textContent = "Copy as curl"; }, 2000);
    });
    const command = document.createElement("pre");
    command.className = "curl";
    command.textContent = step.webhook.curl;
    item.append(summary, request, reply, copy, command);
    items.push(item);
  });
  const heading = document.createElement("h3");
  heading.textContent = items.length ? "Webhooks" : "No webhooks yet";
  $("details").replaceChildren(heading, ...items);
}

function exportSvg() {
  const picture = $("diagram").querySelector("svg");
  if (!picture || !state.data) return;
  const blob = new Blob([Diagram.standalone(picture)], { type: "image/svg+xml" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `call-${state.data.call_sid}.svg`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function scheduleRedraw() {
  if (state.redraw) return;
  state.redraw = setTimeout(() => { state.redraw = null; showDiagram(); }, 120);
}

// The event stream keeps the list's statuses and the diagram live.
function live() {
  const source = new EventSource("/emulator/events");
  source.addEventListener("created", (message) => {
    const event = JSON.parse(message.data);
    if (!event.parent_call_sid) refreshCalls();
    else if (state.family.has(event.parent_call_sid)) scheduleRedraw();
  });
  source.addEventListener("state", (message) => {
    const event = JSON.parse(message.data);
    setStatus(event.call_sid, event.status);
    if (state.family.has(event.call_sid)) scheduleRedraw();
  });
  for (const kind of state.config.event_kinds.filter((k) => k !== "created" && k !== "state")) {
    source.addEventListener(kind, (message) => {
      if (state.family.has(JSON.parse(message.data).call_sid)) scheduleRedraw();
    });
  }
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(live, 2000); };
}

async function main() {
  const config = await fetch("/console/config.json");
  if (!config.ok) {
    // The key cookie is missing or from another run: the banner prints this run's URL.
    status((await config.json()).message || `The emulator answered ${config.status}.`);
    return;
  }
  state.config = await config.json();
  $("dial").value = (state.config.numbers || [])[0] || "";
  $("become").addEventListener("click", () => become().catch((e) => status(String(e))));
  $("call").addEventListener("click", async () => {
    const to = $("dial").value.trim();
    if (!to || state.call || state.incoming) return;
    $("call").disabled = true;
    try {
      const call = await state.device.connect({ params: { To: to } });
      follow(call, to, true);
    } catch (e) {
      idle(`The call could not start: ${e.message || e}`);
    }
  });
  $("answer").addEventListener("click", () => { const call = state.incoming; follow(call, call.parameters.From, false); call.accept(); });
  $("reject").addEventListener("click", () => { state.incoming.reject(); idle("Declined."); });
  $("hangup").addEventListener("click", () => state.call && state.call.disconnect());
  document.querySelector(".pad").addEventListener("click", (e) => {
    const key = e.target.closest("button")?.dataset.key;
    if (!key) return;
    if (state.call) state.call.sendDigits(key); else $("dial").value += key;
  });
  $("export").addEventListener("click", exportSvg);
  const asked = new URL(location.href).searchParams.get("call");
  if (asked) { state.follow = false; state.picked = null; }
  live();
  await refreshCalls();
  if (asked) await pick(asked);
}

main();
