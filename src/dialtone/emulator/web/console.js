// The dev console: an external phone in the browser, and a live sequence diagram of a call.
// Everything shown comes from the emulator's event log; nothing is inserted as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const LANES = ["Twilio Client", "Twilio (emulator)", "API server", "External phone"];
const CLIENT = 0, TWILIO = 1, SERVER = 2, PHONE = 3;
const console_ = { config: null, device: null, call: null, incoming: null, shown: new Set(), events: [], follow: true };

function status(text) { $("status").textContent = text; }

function sounds() {
  const names = ["incoming", "outgoing", "disconnect", ..."0123456789sh".split("").map((k) => "dtmf" + k)];
  return Object.fromEntries(names.map((n) => [n, `/console/sounds/${n}.wav`]));
}

// -- the external phone ----------------------------------------------------------------------

async function become() {
  const number = $("me").value.trim();
  const response = await fetch(`/emulator/phones/${encodeURIComponent(number)}/token`, { method: "POST" });
  const body = await response.json();
  if (!response.ok) { status(body.message || "That number cannot be used."); return; }
  if (console_.device) console_.device.destroy();
  // maxCallSignalingTimeoutMs: the call survives a dropped signaling socket, as on the phone.
  const device = new Twilio.Device(body.token, { chunderw: console_.config.chunderw, publishEvents: false, sounds: sounds(),
                                                 maxCallSignalingTimeoutMs: 30000 });
  console_.device = device;
  device.on("registered", () => { status(`Ready: you are ${body.number}.`); $("controls").hidden = false; });
  device.on("error", (e) => status(`Phone error ${e.code}: ${e.message}`));
  device.on("incoming", (call) => {
    console_.incoming = call;
    status(`Incoming call from ${call.parameters.From}.`);
    $("answer").hidden = $("reject").hidden = false;
    call.on("cancel", () => { idle("Missed call."); });
  });
  await device.register();
}

function inCall(call, peer) {
  console_.call = call;
  $("hangup").hidden = false;
  $("answer").hidden = $("reject").hidden = true;
  call.on("accept", () => status(`In a call with ${peer}.`));
  call.on("volume", (input, output) => {
    $("remote-level").value = Math.min(1, output * 4);
    if (output > 0) $("remote-level").dataset.heard = "yes";
  });
  call.on("disconnect", () => idle("Call ended."));
  call.on("cancel", () => idle("Call canceled."));
  call.on("reject", () => idle("Call rejected."));
}

function idle(text) {
  console_.call = console_.incoming = null;
  $("hangup").hidden = $("answer").hidden = $("reject").hidden = true;
  status(text);
}

// -- the inspector ---------------------------------------------------------------------------

async function refreshCalls() {
  const { calls } = await fetch("/console/calls.json").then((r) => r.json());
  const parents = calls.filter((c) => !c.parent);
  const select = $("pick");
  const chosen = select.value;
  select.replaceChildren(...parents.map((c) =>
    new Option(`${c.sid.slice(0, 10)}… ${c.from} → ${c.to || "(app)"} [${c.status}]`, c.sid)));
  const pick = console_.follow && parents.length ? parents[0].sid : chosen;
  if (pick) select.value = pick;
  const legs = new Set([pick, ...calls.filter((c) => c.parent === pick).map((c) => c.sid)]);
  if (pick && [...legs].some((sid) => !console_.shown.has(sid))) await show(legs);
}

async function show(legs) {
  console_.shown = legs;
  const logs = await Promise.all([...legs].filter(Boolean).map((sid) =>
    fetch(`/emulator/calls/${sid}/events`).then((r) => r.json()).then((b) => b.events).catch(() => [])));
  console_.events = logs.flat().sort((a, b) => a.at - b.at || a.seq - b.seq);
  draw();
}

function farEnd(event) {
  const identity = event.identity || "";
  return identity.startsWith("phone.") ? PHONE : CLIENT;
}

// One row per event: [from lane, to lane or null for a note, label, css class, details]
function row(event) {
  const p = event.parameters || {};
  switch (event.kind) {
    case "created":
      if ((event.from || "").startsWith("+") && event.direction === "inbound") return [PHONE, TWILIO, `call ${event.to}`, "phone"];
      if ((event.from || "").startsWith("client:")) return [CLIENT, TWILIO, `call from ${event.from}`, "signal"];
      if ((event.to || "").startsWith("client:")) return [TWILIO, CLIENT, `ring ${event.to}`, "signal"];
      return [TWILIO, PHONE, `dial ${event.to}`, "phone"];
    case "webhook": {
      const path = (() => { try { return new URL(event.url).pathname; } catch { return event.url; } })();
      return [TWILIO, SERVER, `${event.method} ${path}  X-Twilio-Signature ${event.signature ? "✓ signed" : "–"}`, "webhook",
              { parameters: p, response: event.response_body, status: event.status, latency: event.latency_ms, error: event.error_code }];
    }
    case "signal":
      return event.way === "to-device" ? [TWILIO, farEnd(event), `${event.type}`, "signal"]
                                        : [farEnd(event), TWILIO, `${event.type}`, "signal"];
    case "state": return [TWILIO, null, `${event.call_sid.slice(0, 8)}… ${event.status}`, "note"];
    case "verb": return [TWILIO, null, `<${event.verb}${Object.entries(event.attributes || {}).map(([k, v]) => ` ${k}="${v}"`).join("")}>`, "note"];
    case "audio": return [TWILIO, null, `${event.source} ${event.seconds}s ${event.text || ""}`, "note"];
    case "dtmf": return [event.source === "device" ? CLIENT : PHONE, TWILIO, `DTMF ${event.digit}`, "phone"];
    case "far_end_hangup": return [PHONE, TWILIO, "hang up", "phone"];
    case "error": case "warning": return [TWILIO, null, `${event.kind} ${event.code}: ${event.message}`, "note"];
    default: return [TWILIO, null, event.kind, "note"];
  }
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function draw() {
  const width = 760, laneX = (i) => 90 + i * 190, top = 40, step = 24;
  const rows = console_.events.map(row);
  const extra = rows.filter((r) => r[3] === "webhook").length;
  const height = top + (rows.length + extra + 1) * step;
  const picture = svg("svg", { width, height, role: "img", "aria-label": "Sequence diagram of the call" });
  LANES.forEach((name, i) => {
    picture.append(svg("text", { x: laneX(i), y: 16, "text-anchor": "middle" }, name));
    picture.append(svg("line", { x1: laneX(i), y1: 24, x2: laneX(i), y2: height, class: "lane" }));
  });
  const details = $("details");
  details.replaceChildren();
  let y = top;
  rows.forEach(([from, to, label, kind, more], index) => {
    if (to === null) {
      picture.append(svg("text", { x: laneX(from) + 6, y, class: "note" }, label));
    } else {
      picture.append(svg("line", { x1: laneX(from), y1: y, x2: laneX(to), y2: y, class: kind, "marker-end": "url(#arrow)", "stroke-width": 2 }));
      picture.append(svg("text", { x: (laneX(from) + laneX(to)) / 2, y: y - 4, "text-anchor": "middle" }, `${index + 1}. ${label}`));
    }
    if (kind === "webhook") {
      y += step;
      const answer = more.error ? `error ${more.error}` : `${more.status} in ${more.latency} ms: ${(more.response || "").slice(0, 60)}`;
      picture.append(svg("line", { x1: laneX(SERVER), y1: y, x2: laneX(TWILIO), y2: y, class: "twiml", "stroke-width": 2, "marker-end": "url(#arrow)" }));
      picture.append(svg("text", { x: (laneX(SERVER) + laneX(TWILIO)) / 2, y: y - 4, "text-anchor": "middle" }, answer));
      const item = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = `${index + 1}. ${label}`;
      const body = document.createElement("pre");
      body.textContent = `parameters: ${JSON.stringify(more.parameters, null, 1)}\nresponse (${more.status}, ${more.latency} ms):\n${more.response || ""}`;
      item.append(summary, body);
      details.append(item);
    }
    y += step;
  });
  const defs = svg("defs", {});
  const marker = svg("marker", { id: "arrow", markerWidth: 8, markerHeight: 8, refX: 7, refY: 3, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L7,3 L0,6 z", fill: "#444" }));
  defs.append(marker);
  picture.prepend(defs);
  $("diagram").replaceChildren(picture);
}

function live() {
  const source = new EventSource("/emulator/events");
  source.onmessage = () => {};
  const onEvent = (message) => {
    const event = JSON.parse(message.data);
    if (console_.shown.has(event.call_sid)) {
      console_.events.push(event);
      draw();
    } else {
      refreshCalls();
    }
  };
  for (const kind of ["created", "state", "webhook", "signal", "verb", "audio", "dtmf", "far_end_hangup", "error", "warning", "bridge", "dial_result"]) {
    source.addEventListener(kind, onEvent);
  }
}

async function main() {
  const config = await fetch("/console/config.json");
  if (!config.ok) {
    // The key cookie is missing or from another run: the banner prints this run's URL.
    status((await config.json()).message || `The emulator answered ${config.status}.`);
    return;
  }
  console_.config = await config.json();
  $("dial").value = (console_.config.numbers || [])[0] || "";
  $("become").addEventListener("click", () => become().catch((e) => status(String(e))));
  $("call").addEventListener("click", async () => {
    const call = await console_.device.connect({ params: { To: $("dial").value } });
    inCall(call, $("dial").value);
  });
  $("answer").addEventListener("click", () => { const call = console_.incoming; inCall(call, call.parameters.From); call.accept(); });
  $("reject").addEventListener("click", () => { console_.incoming.reject(); idle("Rejected."); });
  $("hangup").addEventListener("click", () => console_.call && console_.call.disconnect());
  document.querySelector(".pad").addEventListener("click", (e) => {
    const key = e.target.dataset.key;
    if (!key) return;
    if (console_.call) console_.call.sendDigits(key); else $("dial").value += key;
  });
  $("pick").addEventListener("change", () => { console_.follow = false; console_.shown = new Set(); refreshCalls(); });
  await refreshCalls();
  live();
}

main();
