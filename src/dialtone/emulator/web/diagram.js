// The call inspector's sequence diagram: lays out the steps the emulator describes
// (/console/calls/{sid}/diagram.json) so that no label touches a lifeline or an arrowhead.
// Text is measured, wrapped and placed in the gap beside the lane it starts from; each gap is
// as wide as its widest label. The picture carries its own styles, so a download is standalone.
"use strict";

(() => {
  const NS = "http://www.w3.org/2000/svg";
  const FONT = "12px system-ui, sans-serif";
  const MONO = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  const TITLE = "600 12px system-ui, sans-serif";
  const LINE = 15, MONO_LINE = 14, PAD = 12, HEAD = 9, MIN_GAP = 110;
  const WRAP = 260, WRAP_NOTE = 280, WRAP_TWIML = 420, PARTY_WRAP = 200;
  const SCALES = [1, 0.85, 0.7, 0.6];  // narrower wraps until the picture fits its box
  const STYLE = `
    text { font: ${FONT}; fill: #1b1b1b; }
    text.label { stroke: none; }
    .title { font: ${TITLE}; } .party { font: ${FONT}; fill: #5c5c57; }
    .time { font: ${MONO}; fill: #6b6b66; }
    .twiml-text { font: ${MONO}; fill: #1e4620; }
    .title-box { fill: #f4f4f1; stroke: #8a8a85; }
    .twiml-box { fill: #f1f8f1; stroke: #9cc79f; }
    .lifeline { stroke: #9a9a95; stroke-width: 1; stroke-dasharray: 4 3; }
    .arrow { stroke-width: 1.6; fill: none; }
    .webhook { stroke: #1a5fb4; fill: #1a5fb4; } .twiml { stroke: #2e7d32; fill: #2e7d32; }
    .signal { stroke: #8e24aa; fill: #8e24aa; } .media { stroke: #c05600; fill: #c05600; }
    .problem { stroke: #b3261e; fill: #b3261e; } .note { stroke: #555; fill: #555; }
    .label.problem, .note-text.problem { fill: #b3261e; stroke: none; }
    .note-text { fill: #3b3b38; font-style: italic; }
    .background { fill: #fff; }`;

  const canvas = document.createElement("canvas").getContext("2d");
  function width(text, font) { canvas.font = font; return canvas.measureText(text).width; }

  // Greedy word wrap; a word longer than the line is cut. No-break spaces join words.
  function wrap(text, font, max) {
    const lines = [];
    let line = "";
    for (const word of String(text).split(" ")) {
      const candidate = line ? `${line} ${word}` : word;
      if (width(candidate, font) <= max) { line = candidate; continue; }
      if (line) lines.push(line);
      line = word;
      while (width(line, font) > max) {
        let cut = line.length - 1;
        while (cut > 1 && width(line.slice(0, cut), font) > max) cut--;
        lines.push(line.slice(0, cut));
        line = line.slice(cut);
      }
    }
    lines.push(line);
    return lines.map((l) => l.replace(/\u00a0/g, " "));
  }

  // Pretty-printed TwiML keeps its indentation; an overlong line continues indented further.
  function wrapCode(text, max) {
    const out = [];
    for (const raw of String(text).split("\n")) {
      const indent = raw.match(/^\s*/)[0] + "    ";
      let rest = raw;
      while (width(rest, MONO) > max) {
        let cut = rest.length - 1;
        while (cut > indent.length + 1 && width(rest.slice(0, cut), MONO) > max) cut--;
        const space = rest.lastIndexOf(" ", cut);  // between attributes, when there is one
        if (space > indent.length) cut = space + 1;
        out.push(rest.slice(0, cut).trimEnd());
        rest = indent + rest.slice(cut);
      }
      out.push(rest);
    }
    return out;
  }

  function el(tag, attributes, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function textBlock(lines, x, firstBaseline, lineHeight, attributes) {
    const node = el("text", { x, y: firstBaseline, ...attributes });
    lines.forEach((line, i) => node.append(el("tspan", { x, y: firstBaseline + i * lineHeight }, line)));
    return node;
  }

  function seconds(at, start) { return `+${(at - start).toFixed(2)} s`; }

  // The gap a step's text sits in: beside its source lane, towards its target (0 = between
  // lanes 0 and 1; the last one is the margin right of the last lane).
  function gapOf(step) {
    if (step.to === null || step.to === undefined) return step.from;
    return step.from < step.to ? step.from : step.from - 1;
  }

  // Only the lanes a call uses (and Twilio's), so an unused one takes no room.
  function visible(data) {
    const used = new Set([1]);
    for (const step of data.steps) { used.add(step.from); if (step.to !== null && step.to !== undefined) used.add(step.to); }
    const kept = data.lanes.map((lane, i) => i).filter((i) => used.has(i));
    const at = Object.fromEntries(kept.map((lane, i) => [lane, i]));
    return {
      ...data,
      lanes: kept.map((i) => data.lanes[i]),
      steps: data.steps.map((s) => ({ ...s, from: at[s.from], to: s.to === null || s.to === undefined ? null : at[s.to] })),
      twilio: at[1],
    };
  }

  function layout(data, scale) {
    const lanes = data.lanes.length;
    const items = [];
    data.steps.forEach((step, index) => {
      const number = index + 1;
      const arrow = step.to !== null && step.to !== undefined;
      const lines = wrap(step.text, FONT, (arrow ? WRAP : WRAP_NOTE) * scale);
      items.push({ step, number, arrow, gap: gapOf(step), lines, font: FONT, lineHeight: LINE,
                   width: Math.max(...lines.map((l) => width(l, FONT))) });
      if (step.twiml) {
        const code = wrapCode(step.twiml, WRAP_TWIML * scale);
        if (step.truncated) code.push(`(${step.truncated})`);
        items.push({ step, number, arrow: false, code: true, gap: data.twilio, lines: code, font: MONO, lineHeight: MONO_LINE,
                     width: Math.max(...code.map((l) => width(l, MONO))) + 8 });
      }
    });
    const titles = data.lanes.map((lane) => {
      const parties = lane.parties.length ? wrap(lane.parties.join(", "), FONT, PARTY_WRAP) : [];
      return { name: lane.name, parties, width: Math.max(width(lane.name, TITLE), ...parties.map((p) => width(p, FONT))) + 20 };
    });
    const gaps = Array.from({ length: lanes }, (_, g) => {
      const widest = Math.max(0, ...items.filter((i) => i.gap === g).map((i) => i.width));
      const titlesFit = g + 1 < lanes ? titles[g].width / 2 + titles[g + 1].width / 2 + 16 : titles[g].width / 2 + 8;
      return Math.ceil(Math.max(g + 1 < lanes ? MIN_GAP : 16, widest + 2 * PAD, titlesFit));
    });
    // A gap made wide by one label lets the others in it use the room (fewer wrapped lines).
    for (const item of items) {
      if (item.code) continue;
      const room = gaps[item.gap] - 2 * PAD;
      if (room <= item.width || item.lines.length === 1) continue;
      item.lines = wrap(item.step.text, FONT, room);
      item.width = Math.max(...item.lines.map((l) => width(l, FONT)));
    }
    const gutter = Math.ceil(Math.max(width("99  +999.99 s", MONO), 0) + 16);
    const x = [Math.ceil(Math.max(gutter + PAD, titles[0].width / 2 + 8))];
    for (let g = 0; g + 1 < lanes; g++) x.push(x[g] + gaps[g]);
    return { items, titles, gaps, gutter, x, width: x[lanes - 1] + gaps[lanes - 1] };
  }

  function draw(container, everything) {
    const data = visible(everything);
    const room = container.clientWidth - 2;
    let laid;
    for (const scale of SCALES) {
      laid = layout(data, scale);
      if (laid.width <= room) break;
    }
    const { items, titles, gaps, x, width: total } = laid;
    const picture = el("svg", { xmlns: NS, role: "img", "aria-labelledby": "diagram-title", "font-family": "system-ui, sans-serif" });
    picture.append(el("title", { id: "diagram-title" }, `Sequence diagram of the call ${data.call_sid}: ${data.title}`));
    picture.append(el("style", {}, STYLE));
    const background = el("rect", { class: "background", x: 0, y: 0, width: total, height: 0 });
    picture.append(background);
    const top = 8, titleHeight = 26 + LINE * Math.max(0, ...titles.map((t) => t.parties.length));
    titles.forEach((title, i) => {
      const group = el("g", { class: "participant" });
      group.append(el("rect", { class: "title-box", x: x[i] - title.width / 2, y: top, width: title.width, height: titleHeight, rx: 5 }));
      group.append(el("text", { class: "title", x: x[i], y: top + 16, "text-anchor": "middle" }, title.name));
      if (title.parties.length) group.append(textBlock(title.parties, x[i], top + 32, LINE, { class: "party", "text-anchor": "middle" }));
      picture.append(group);
    });
    const start = top + titleHeight;
    let cursor = start + 14;
    const body = el("g", { class: "steps" });
    let lastNumber = 0;
    for (const item of items) {
      const { step } = item;
      const group = el("g", { class: "step", "data-kind": step.kind, "data-call": step.call_sid, "data-seq": step.seq });
      const baseline = cursor + item.lineHeight - 4;
      if (item.number !== lastNumber) {
        group.append(el("text", { class: "time label", x: 6, y: baseline }, `${String(item.number).padStart(2)}  ${seconds(step.at, data.start)}`));
        lastNumber = item.number;
      }
      if (item.arrow) {
        const from = x[step.from], to = x[step.to];
        const center = x[item.gap] + gaps[item.gap] / 2;
        group.append(textBlock(item.lines, center, baseline, LINE, { class: `label ${step.style}`, "text-anchor": "middle" }));
        const y = cursor + item.lines.length * LINE + 6;
        const sign = to > from ? 1 : -1;
        group.append(el("line", { class: `arrow ${step.style}`, x1: from, y1: y, x2: to - sign * HEAD, y2: y }));
        group.append(el("path", { class: `head ${step.style}`, d: `M${to},${y} L${to - sign * HEAD},${y - 4.5} L${to - sign * HEAD},${y + 4.5} Z` }));
        cursor = y + 12;
      } else if (item.code) {
        const left = x[item.gap] + PAD;
        const height = item.lines.length * item.lineHeight + 8;
        group.append(el("rect", { class: "twiml-box", x: left, y: cursor - 2, width: item.width, height, rx: 4 }));
        // Indentation as no-break spaces: SVG collapses ordinary ones.
        const shown = item.lines.map((l) => l.replace(/^ +/, (s) => "\u00a0".repeat(s.length)));
        group.append(textBlock(shown, left + 4, baseline + 2, item.lineHeight, { class: "label twiml-text" }));
        cursor += height + 8;
      } else {
        group.append(textBlock(item.lines, x[item.gap] + PAD, baseline, LINE, { class: `label note-text ${step.style}` }));
        cursor += item.lines.length * LINE + 8;
      }
      body.append(group);
    }
    const bottom = cursor + 10;
    x.forEach((lx) => picture.append(el("line", { class: "lifeline", x1: lx, y1: start, x2: lx, y2: bottom })));
    picture.append(body);
    background.setAttribute("height", bottom + 8);
    picture.setAttribute("width", total);
    picture.setAttribute("height", bottom + 8);
    picture.setAttribute("viewBox", `0 0 ${total} ${bottom + 8}`);
    container.replaceChildren(picture);
    return picture;
  }

  // A standalone SVG document of what is on screen (its <style> travels with it).
  function standalone(picture) {
    const copy = picture.cloneNode(true);
    copy.setAttribute("xmlns", NS);
    return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(copy)}\n`;
  }

  window.Diagram = { draw, standalone };
})();
