// The message list: day separators, grouped messages with coloured names,
// /me actions, folded joins and parts, the "new messages" line, history as
// you scroll up, and a jump-to-latest button.
import { html } from "htm/preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { clock, dayKey, dayLabel, fullTime, initial, mentions, nickClass, richText, convText, convTitle, isIrc } from "../format.js";
import { Icon } from "./icons.js";
import { noteIsError, replyLine, unsentSeqs } from "../ircreplies.js";

const GROUP_MS = 7 * 60 * 1000;

/** Messages to rows: day separators, folded joins/parts, groups, the marker. */
export function rows(msgs, markerSeq, meId) {
  const out = [];
  let day = null;
  let prev = null;
  let fold = null;
  let markerDone = markerSeq === null;
  for (const m of msgs) {
    const k = dayKey(m.ts);
    if (k !== day) {
      out.push({ type: "day", key: "d" + k, label: dayLabel(m.ts) });
      day = k;
      prev = null;
      fold = null;
    }
    if (!markerDone && m.seq > markerSeq) {
      markerDone = true;
      if (m.sender_id !== meId) {
        out.push({ type: "marker", key: "marker" });
        prev = null;
        fold = null;
      }
    }
    if (m.kind === "join" || m.kind === "part") {
      if (!fold) {
        fold = { type: "fold", key: "f" + m.seq, joins: [], parts: [], first: m, seqs: [] };
        out.push(fold);
      }
      (m.kind === "join" ? fold.joins : fold.parts).push(m.sender);
      fold.seqs.push(m.seq);
      fold.last = m;
      prev = null;
      continue;
    }
    fold = null;
    const grouped =
      prev && prev.sender === m.sender && (m.kind === "text" || m.kind === "action") && prev.kind !== "topic" && m.ts - prev.ts < GROUP_MS;
    out.push({ type: "msg", key: "m" + m.seq, m, grouped });
    prev = m.kind === "text" || m.kind === "action" ? m : null;
  }
  return out;
}

function uniq(names) {
  return [...new Set(names)];
}

function Fold({ row }) {
  const [open, setOpen] = useState(false);
  const joins = uniq(row.joins);
  const parts = uniq(row.parts);
  const bits = [];
  if (joins.length) bits.push(`${list(joins)} joined`);
  if (parts.length) bits.push(`${list(parts)} left`);
  const many = row.seqs.length > 1;
  return html`<div class="fold" data-seq=${row.first.seq}>
    <span class="time" title=${fullTime(row.first.ts)}>${clock(row.first.ts)}</span>
    <span class="fold-text">${bits.join(" · ")}</span>
    ${many && html`<button class="linklike small" aria-expanded=${open} onClick=${() => setOpen(!open)}>${open ? "hide" : "details"}</button>`}
    ${open && html`<ul class="fold-list">${row.seqs.map((s, i) => html`<li key=${s}>${(row.joins.concat(row.parts))[i]}</li>`)}</ul>`}
  </div>`;
}

function list(names) {
  if (names.length <= 3) return names.join(", ");
  return `${names.slice(0, 3).join(", ")} and ${names.length - 3} more`;
}

function Message({ row, chat, c }) {
  const { m, grouped } = row;
  const mine = m.sender_id === chat.me.id;
  const hl = !mine && (m.kind === "text" || m.kind === "action" || m.kind === "notice") && (isIrc(c) ? !!m.meta?.mention : mentions(m.text, chat.matcher));
  const matcher = mine ? null : chat.matcher;
  const unsent = row.unsent; // an IRC message that did not reach IRC (a note says why)
  const cls = ["msg", "kind-" + m.kind, grouped ? "grouped" : "", hl ? "highlight" : "", mine ? "mine" : "", unsent ? "not-sent" : ""].join(" ");
  // your own: "Send again" sends the text as a new message (a new nonce: the
  // first one is committed, so repeating it would only repeat its ack)
  const unsentTag = unsent && html` <span class="irc-not-sent" title="See the note below">${unsent === "maybe" ? "maybe not sent to IRC" : "not sent to IRC"}</span>${
    mine && html` <button type="button" class="linklike irc-resend" onClick=${() => chat.send(c, m.text, m.kind)}>Send again</button>`}`;
  const time = html`<time class="time" datetime=${new Date(m.ts).toISOString()} title=${fullTime(m.ts)}>${clock(m.ts)}</time>`;
  if (m.kind === "topic") {
    return html`<div class="msg kind-topic" data-seq=${m.seq}>${time}
      <span class="sys-text"><b class=${nickClass(m.sender)}>${m.sender}</b> set the topic: <q>${convText(c, m.text, null)}</q></span></div>`;
  }
  if (m.kind === "system" && isIrc(c)) {
    // server replies and notes (server buffer): numerics in words, errors marked
    const r = replyLine(m);
    const level = r ? r.level : noteIsError(m) ? "error" : "info";
    const text = r ? r.text : m.text;
    return html`<div class=${`msg kind-system irc-note irc-${level}${r?.group ? " irc-" + r.group : ""}`} data-seq=${m.seq} data-numeric=${r?.code}>${time}<span class="sys-text">${
      level === "error" && html`<span class="irc-err-tag">error</span> `}${convText(c, text, null)}</span>${
      r && html`<small class="irc-code" title=${"IRC reply " + r.code}>${r.code}</small>`}</div>`;
  }
  if (m.kind === "system" || m.kind === "event") {
    return html`<div class=${"msg kind-" + m.kind} data-seq=${m.seq}>${time}<span class="sys-text">${convText(c, m.text, matcher)}</span></div>`;
  }
  if (m.kind === "action") {
    return html`<div class=${cls} data-seq=${m.seq}>
      <span class="gutter">${time}</span>
      <div class="body"><p class="text action"><span class="star" aria-hidden="true">*</span> <b class=${"nick " + nickClass(m.sender)}>${m.sender}</b> ${convText(c, m.text, matcher)}${unsentTag}</p></div>
    </div>`;
  }
  return html`<div class=${cls} data-seq=${m.seq}>
    <span class="gutter">${grouped ? time : html`<span class=${"avatar " + nickClass(m.sender)} aria-hidden="true">${initial(m.sender)}</span>`}</span>
    <div class="body">
      ${!grouped && html`<div class="meta"><b class=${"nick " + nickClass(m.sender)}>${m.sender}</b>${time}</div>`}
      <p class="text">${m.kind === "notice" && html`<span class="notice-tag">notice</span> `}${convText(c, m.text, matcher)}${unsentTag}</p>
    </div>
  </div>`;
}

function Pending({ entry, chat }) {
  const failed = entry.state === "failed";
  return html`<div class=${"msg pending" + (failed ? " failed" : "") + (entry.kind === "action" ? " kind-action" : "")} data-nonce=${entry.nonce}>
    <span class="gutter"><span class=${"avatar " + nickClass(chat.me.name)} aria-hidden="true">${initial(chat.me.name)}</span></span>
    <div class="body">
      <div class="meta"><b class=${"nick " + nickClass(chat.me.name)}>${chat.me.name}</b>
        <span class="pending-state">${failed ? html`<${Icon} name="alert" size=${13} /> not sent: ${entry.error}`
          : html`<${Icon} name="clock" size=${13} /> ${chat.conn.state === "online" ? "sending…" : "waiting for the connection"}`}</span></div>
      <p class="text">${entry.kind === "action" ? `* ${chat.me.name} ` : ""}${entry.text}</p>
      ${failed && html`<div class="pending-actions">
        <button class="btn small" onClick=${() => chat.outbox.retry(entry.nonce)}>Retry</button>
        <button class="btn small ghost" onClick=${() => chat.outbox.done(entry.nonce)}>Discard</button></div>`}
    </div>
  </div>`;
}

export function MessageList({ chat, c, flashSeq }) {
  const scroller = useRef();
  const snap = useRef({ id: null, first: null, height: 0, top: 0, count: 0 });
  const [atBottom, setAtBottom] = useState(true);
  const items = rows(c.msgs, c.markerSeq, chat.me.id);
  if (isIrc(c)) {
    const unsent = unsentSeqs(c.msgs);
    if (unsent.size) for (const r of items) if (r.type === "msg" && unsent.has(r.m.seq)) r.unsent = unsent.get(r.m.seq);
  }
  const pending = chat.pending(c);
  const notices = chat.notices.get(c.id) || [];
  const first = c.msgs.length ? c.msgs[0].seq : null;

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const s = snap.current;
    if (s.id !== c.id) {
      // a conversation just opened: to the "new messages" line, or the bottom
      const marker = el.querySelector(".marker");
      if (marker && marker.offsetTop > el.clientHeight / 2) el.scrollTop = marker.offsetTop - el.clientHeight / 3;
      else el.scrollTop = el.scrollHeight;
    } else if (first !== null && s.first !== null && first < s.first) {
      el.scrollTop = el.scrollHeight - s.height + s.top; // older page prepended: stay put
    } else if (chat.atBottom) {
      el.scrollTop = el.scrollHeight;
    }
    snap.current = { id: c.id, first, height: el.scrollHeight, top: el.scrollTop };
    onScroll();
  });

  const flashed = useRef(null);
  useEffect(() => {
    if (!flashSeq || flashed.current === flashSeq) return; // once, not at every new message
    const el = scroller.current?.querySelector(`[data-seq="${flashSeq}"]`);
    if (el) {
      flashed.current = flashSeq;
      el.scrollIntoView({ block: "center" });
      el.classList.add("flash");
      setTimeout(() => el.classList.remove("flash"), 2000);
    }
  }, [flashSeq, c.msgs.length]);

  function onScroll() {
    const el = scroller.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    snap.current.top = el.scrollTop;
    snap.current.height = el.scrollHeight;
    chat.atBottom = bottom;
    if (bottom && document.visibilityState === "visible" && c.read_seq < c.hi) chat.markRead(c);
    if (bottom !== atBottom) setAtBottom(bottom);
    if (el.scrollTop < 400 && chat.hasOlder(c) && !c.loadingOlder && !c.historyError) chat.loadOlder(c);
  }

  function jump() {
    const el = scroller.current;
    chat.atBottom = true;
    el.scrollTop = el.scrollHeight;
    chat.markRead(c);
  }

  const newBelow = !atBottom ? c.msgs.filter((m) => m.seq > c.read_seq && m.sender_id !== chat.me.id).length : 0;
  return html`<div class="messages-wrap">
    <div class="messages" ref=${scroller} onScroll=${onScroll} role="log" aria-label=${"Messages"} aria-live="polite" tabindex="0" id="messages">
      <div class="history-edge">
        ${c.loadingOlder ? html`<span class="spinner" aria-label="Loading history"></span> Loading history…`
          : c.historyError ? html`<span>Could not load history: ${c.historyError}</span> <button class="btn small" onClick=${() => { c.historyError = null; chat.loadOlder(c); }}>Retry</button>`
          : chat.hasOlder(c) ? html`<button class="linklike" onClick=${() => chat.loadOlder(c)}>Load older messages</button>`
          : html`<span class="beginning">This is the beginning of ${c.kind === "room" ? "#" + c.name : c.kind === "channel" ? c.name : c.kind === "query" ? convTitle(c) : "your conversation with " + (c.peer || c.name)}.</span>`}
      </div>
      ${items.map((row) =>
        row.type === "day" ? html`<div class="day" key=${row.key} role="separator"><span>${row.label}</span></div>`
        : row.type === "marker" ? html`<div class="marker" key="marker" role="separator" aria-label="New messages"><span>New messages</span></div>`
        : row.type === "fold" ? html`<${Fold} key=${row.key} row=${row} />`
        : html`<${Message} key=${row.key} row=${row} chat=${chat} c=${c} />`,
      )}
      ${pending.map((e) => html`<${Pending} key=${e.nonce} entry=${e} chat=${chat} />`)}
      ${notices.map((n) => html`<div key=${n.id} class=${"local-notice " + n.level + (n.cls ? " " + n.cls : "")} role=${n.level === "error" ? "alert" : "status"}>
        <pre>${n.text}</pre><button class="icon-btn small" aria-label="Dismiss" onClick=${() => chat.clearNotices(c.id)}><${Icon} name="x" size=${14} /></button></div>`)}
    </div>
    ${!atBottom && html`<button class="jump" onClick=${jump} aria-label="Jump to the latest messages">
      <${Icon} name="down" size=${16} />${newBelow > 0 ? ` ${newBelow} new` : " Latest"}</button>`}
  </div>`;
}
