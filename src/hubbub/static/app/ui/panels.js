// Panels and dialogs: members, join or create a room, start a DM, search,
// settings (theme, notifications, highlights, password, sessions).
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import * as rest from "../api.js";
import { ago, clock, convTitle, dayLabel, highlightText, highlighter, initial, nickClass } from "../format.js";
import { Icon } from "./icons.js";

export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef();
  useEffect(() => {
    const el = ref.current;
    const prev = document.activeElement;
    const focusable = el.querySelector("input, select, textarea, button:not(.dialog-close)") || el;
    focusable.focus();
    return () => prev && prev.focus && prev.focus();
  }, []);
  function onKeyDown(e) {
    if (e.key === "Escape") {
      e.stopPropagation();
      onClose();
    }
    if (e.key === "Tab") {
      const items = [...ref.current.querySelectorAll("a[href], button:not([disabled]), input, select, textarea")];
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    }
  }
  return html`<div class="overlay" onClick=${(e) => e.target === e.currentTarget && onClose()}>
    <div class=${"dialog" + (wide ? " wide" : "")} role="dialog" aria-modal="true" aria-labelledby="dialog-title" ref=${ref} onKeyDown=${onKeyDown} tabindex="-1">
      <header class="dialog-head"><h2 id="dialog-title">${title}</h2>
        <button class="icon-btn dialog-close" onClick=${onClose} aria-label="Close"><${Icon} name="x" /></button></header>
      <div class="dialog-body">${children}</div>
    </div>
  </div>`;
}

export function Confirm({ title, text, action, danger, onConfirm, onClose }) {
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>${text}</p>
    <div class="dialog-actions">
      <button class="btn" onClick=${onClose}>Cancel</button>
      <button class=${"btn " + (danger ? "danger-fill" : "primary")} onClick=${() => { onClose(); onConfirm(); }}>${action}</button>
    </div>
  </${Dialog}>`;
}

function InviteForm({ chat, c }) {
  const [name, setName] = useState("");
  const [msg, setMsg] = useState(null);
  async function invite(e) {
    e.preventDefault();
    if (!name.trim()) return;
    try {
      await chat.invite(c, name.trim());
      setMsg({ ok: true, text: `${name.trim()} is in.` });
      setName("");
    } catch (err) {
      setMsg({ ok: false, text: err.code === "not_found" ? `No user called ${name.trim()}.` : err.message });
    }
  }
  return html`<form class="invite" onSubmit=${invite}>
    <input value=${name} onInput=${(e) => setName(e.currentTarget.value)} placeholder="Invite someone" aria-label="Name to invite" autocapitalize="none" spellcheck="false" />
    <button class="btn small" type="submit">Invite</button>
    ${msg && html`<p class=${msg.ok ? "form-ok" : "form-error"} role="status">${msg.text}</p>`}
  </form>`;
}

const PREFIX_RANK = "~&@%+";
const rank = (p) => (p ? PREFIX_RANK.indexOf(p[0]) : 9) + 0;

function IrcMemberList({ c, open, onClose }) {
  const members = c.ircMembers;
  const sorted = members
    ? [...members].sort((a, b) => rank(a.prefixes) - rank(b.prefixes) || a.nick.localeCompare(b.nick, undefined, { sensitivity: "base" }))
    : [];
  return html`<aside class=${"members irc" + (open ? " open" : "")} aria-label="Members" id="members">
    <header class="panel-head"><h2>Members ${members && html`<small>${members.length}</small>`}</h2>
      <button class="icon-btn" onClick=${onClose} aria-label="Close members"><${Icon} name="x" /></button></header>
    ${!members ? html`<p class="muted pad">${c.kind === "query" ? "A private conversation." : "Waiting for the member list…"}</p>` : html`<ul class="member-list">
      ${sorted.map((m) => html`<li key=${m.nick} class="online"><span class="member" data-nick=${m.nick}>
        <span class=${"avatar small " + nickClass(m.nick)} aria-hidden="true">${initial(m.nick)}</span>
        <span class="member-name"><span class="member-prefix">${(m.prefixes || "").slice(0, 1)}</span>${m.nick}</span></span></li>`)}
    </ul>`}
  </aside>`;
}

export function MemberList({ chat, c, open, onClose, onDm }) {
  if (c.kind === "channel" || c.kind === "query") return html`<${IrcMemberList} c=${c} open=${open} onClose=${onClose} />`;
  const members = c.members;
  const sorted = members
    ? [...members].sort((a, b) => (b.online - a.online) || (a.role === "owner" ? -1 : 0) - (b.role === "owner" ? -1 : 0) || a.name.localeCompare(b.name))
    : [];
  const onlineCount = members ? members.filter((m) => m.online).length : 0;
  return html`<aside class=${"members" + (open ? " open" : "")} aria-label="Members" id="members">
    <header class="panel-head"><h2>Members ${members && html`<small>${onlineCount} online · ${members.length}</small>`}</h2>
      <button class="icon-btn" onClick=${onClose} aria-label="Close members"><${Icon} name="x" /></button></header>
    ${!members ? html`<p class="muted pad">Loading…</p>` : html`<ul class="member-list">
      ${sorted.map((m) => html`<li key=${m.user_id} class=${m.online ? "online" : "offline"}>
        <button class="member" onClick=${() => m.name !== chat.me.name && onDm(m.name)} title=${m.name === chat.me.name ? "you" : "Message " + m.name}
          aria-label=${`${m.name}, ${m.online ? "online" : "offline"}${m.role === "owner" ? ", owner" : ""}`}>
          <span class=${"avatar small " + nickClass(m.name)} aria-hidden="true">${initial(m.name)}<i class=${"presence-dot" + (m.online ? "" : " off")}></i></span>
          <span class="member-name">${m.name}</span>
          ${m.role === "owner" && html`<span class="role">owner</span>`}
        </button></li>`)}
    </ul>`}
    ${c.kind === "room" && html`<${InviteForm} chat=${chat} c=${c} />`}
  </aside>`;
}

export function JoinDialog({ chat, onClose }) {
  const [q, setQ] = useState("");
  const [rooms, setRooms] = useState(null);
  const [error, setError] = useState(null);
  const [visibility, setVisibility] = useState("public");
  const [topic, setTopic] = useState("");
  useEffect(() => {
    const ctl = new AbortController();
    const t = setTimeout(() => {
      rest.get("rooms" + rest.query({ q: q.replace(/^#/, ""), limit: 50 }), { signal: ctl.signal }).then(setRooms, (e) => e.name !== "AbortError" && setError(e.message));
    }, 150);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [q]);
  async function join(name) {
    setError(null);
    try {
      await chat.joinRoom(name);
      onClose();
    } catch (err) {
      setError(err.message);
    }
  }
  async function create(e) {
    e.preventDefault();
    setError(null);
    if (!q.trim()) return setError("Enter a name for the new room.");
    try {
      await chat.createRoom(q, visibility, topic);
      onClose();
    } catch (err) {
      setError(err.code === "name_taken" ? "A room with that name exists. Join it from the list." : err.message);
    }
  }
  const exact = rooms?.some((r) => r.name.toLowerCase() === q.replace(/^#/, "").trim().toLowerCase());
  return html`<${Dialog} title="Join or create a room" onClose=${onClose}>
    <form onSubmit=${create}>
      <label class="field"><span>Room name</span>
        <input value=${q} onInput=${(e) => setQ(e.currentTarget.value)} placeholder="#lobby" autocapitalize="none" spellcheck="false" maxlength="80" /></label>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      <ul class="room-list" aria-label="Public rooms">
        ${rooms === null ? html`<li class="muted">Loading rooms…</li>` : rooms.length === 0 ? html`<li class="muted">No public room matches.</li>` : null}
        ${(rooms || []).map((r) => {
          const mine = chat.convs.has(r.id);
          return html`<li key=${r.id}><div><b>#${r.name}</b> <small>${r.members} member${r.members === 1 ? "" : "s"}</small>
            ${r.topic && html`<p class="muted clip">${r.topic}</p>`}</div>
            ${mine ? html`<button type="button" class="btn small" onClick=${() => { chat.open(r.id); onClose(); }}>Open</button>`
              : html`<button type="button" class="btn small primary" onClick=${() => join(r.name)}>Join</button>`}</li>`;
        })}
      </ul>
      ${q.trim() && !exact && html`<fieldset class="create-room"><legend>Create #${q.replace(/^#/, "").trim()}</legend>
        <label class="field"><span>Topic (optional)</span><input value=${topic} onInput=${(e) => setTopic(e.currentTarget.value)} maxlength="400" /></label>
        <div class="radio-row" role="radiogroup" aria-label="Who can join">
          <label><input type="radio" name="vis" checked=${visibility === "public"} onChange=${() => setVisibility("public")} /> Public: anyone can join</label>
          <label><input type="radio" name="vis" checked=${visibility === "private"} onChange=${() => setVisibility("private")} /> Private: by invitation</label>
        </div>
        <button class="btn primary" type="submit">Create room</button></fieldset>`}
    </form>
  </${Dialog}>`;
}

export function DmDialog({ chat, onClose }) {
  const [name, setName] = useState("");
  const [users, setUsers] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    rest.get("users?limit=500").then(setUsers, () => {});
  }, []);
  async function start(n) {
    setError(null);
    try {
      await chat.openDm(n);
      onClose();
    } catch (err) {
      setError(err.code === "not_found" ? `There is no user called ${n}.` : err.message);
    }
  }
  const shown = users.filter((u) => u.id !== chat.me.id && u.name.toLowerCase().includes(name.trim().toLowerCase())).slice(0, 50);
  return html`<${Dialog} title="Start a direct message" onClose=${onClose}>
    <form onSubmit=${(e) => { e.preventDefault(); name.trim() && start(name.trim()); }}>
      <label class="field"><span>Name</span>
        <input value=${name} onInput=${(e) => setName(e.currentTarget.value)} autocapitalize="none" spellcheck="false" placeholder="Who?" /></label>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      <ul class="room-list" aria-label="People">
        ${shown.map((u) => html`<li key=${u.id}><div class="row-center"><span class=${"avatar small " + nickClass(u.name)} aria-hidden="true">${initial(u.name)}${u.online && html`<i class="presence-dot"></i>`}</span> <b>${u.name}</b>
          <small class="muted">${u.online ? "online" : ""}</small></div>
          <button type="button" class="btn small primary" onClick=${() => start(u.name)}>Message</button></li>`)}
      </ul>
    </form>
  </${Dialog}>`;
}

export function SearchPanel({ chat, initial: initialQuery, onClose, onPick }) {
  const [q, setQ] = useState(initialQuery || "");
  const [only, setOnly] = useState(false);
  const [results, setResults] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!q.trim()) {
      setResults(null);
      return;
    }
    const ctl = new AbortController();
    const t = setTimeout(() => {
      rest.get("search" + rest.query({ q: q.trim(), conversation: only ? chat.active : undefined, limit: 50 }), { signal: ctl.signal })
        .then((r) => { setResults(r.messages); setError(null); }, (e) => e.name !== "AbortError" && setError(e.message));
    }, 200);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [q, only]);
  const matcher = q.trim() ? highlighter("", q.trim().split(/\s+/)) : null;
  return html`<${Dialog} title="Search" onClose=${onClose} wide=${true}>
    <label class="field"><span>Words</span>
      <input type="search" value=${q} onInput=${(e) => setQ(e.currentTarget.value)} placeholder="Search your conversations" /></label>
    <label class="check"><input type="checkbox" checked=${only} onChange=${(e) => setOnly(e.currentTarget.checked)} disabled=${!chat.active} />
      Only in ${chat.current ? convTitle(chat.current) : "this conversation"}</label>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <ul class="results" aria-label="Results">
      ${results && results.length === 0 && html`<li class="muted">Nothing found.</li>`}
      ${(results || []).map((m) => {
        const c = chat.convs.get(m.conversation);
        return html`<li key=${m.id}><button class="result" onClick=${() => onPick(m)}>
          <span class="result-meta"><b>${c ? convTitle(c) : "?"}</b> · <b class=${nickClass(m.sender)}>${m.sender}</b> · ${dayLabel(m.ts)} ${clock(m.ts)}</span>
          <span class="result-text">${highlightText(m.text, matcher)}</span></button></li>`;
      })}
    </ul>
  </${Dialog}>`;
}

export function SettingsDialog({ chat, settings, onChange, onClose, onLogout }) {
  const [tab, setTab] = useState("appearance");
  const tabs = [
    ["appearance", "Appearance"],
    ["notifications", "Notifications"],
    ["account", "Account"],
    ["sessions", "Sessions"],
  ];
  return html`<${Dialog} title="Settings" onClose=${onClose} wide=${true}>
    <div class="tabs" role="tablist" aria-label="Settings sections">
      ${tabs.map(([k, label]) => html`<button role="tab" id=${"tab-" + k} aria-selected=${tab === k} aria-controls=${"panel-" + k}
        class=${"tab" + (tab === k ? " active" : "")} onClick=${() => setTab(k)}>${label}</button>`)}
    </div>
    <div role="tabpanel" id=${"panel-" + tab} aria-labelledby=${"tab-" + tab} class="tab-panel">
      ${tab === "appearance" && html`<${Appearance} settings=${settings} onChange=${onChange} />`}
      ${tab === "notifications" && html`<${Notifications} settings=${settings} onChange=${onChange} />`}
      ${tab === "account" && html`<${Account} chat=${chat} onLogout=${onLogout} />`}
      ${tab === "sessions" && html`<${Sessions} />`}
    </div>
  </${Dialog}>`;
}

function Appearance({ settings, onChange }) {
  return html`<fieldset class="radio-cards"><legend>Theme</legend>
    ${[["system", "Follow the system"], ["light", "Light"], ["dark", "Dark"]].map(([v, label]) => html`
      <label class=${"radio-card" + (settings.theme === v ? " checked" : "")}><input type="radio" name="theme" value=${v}
        checked=${settings.theme === v} onChange=${() => onChange({ ...settings, theme: v })} />
        <span class=${"swatch swatch-" + v} aria-hidden="true"></span>${label}</label>`)}
  </fieldset>
  <label class="check"><input type="checkbox" checked=${settings.compact} onChange=${(e) => onChange({ ...settings, compact: e.currentTarget.checked })} /> Compact message list</label>`;
}

function Notifications({ settings, onChange }) {
  const supported = "Notification" in window;
  const [perm, setPerm] = useState(supported ? Notification.permission : "unsupported");
  const [words, setWords] = useState(settings.highlights.join(", "));
  async function ask() {
    const p = await Notification.requestPermission();
    setPerm(p);
  }
  return html`<fieldset><legend>Desktop notifications while Hubbub is in the background</legend>
      ${[["mentions", "Mentions and direct messages"], ["all", "Every message"], ["off", "Never"]].map(([v, label]) => html`
        <label class="check"><input type="radio" name="notify" checked=${settings.notify === v} onChange=${() => onChange({ ...settings, notify: v })} /> ${label}</label>`)}
      <p class="hint">${perm === "granted" ? "This browser allows Hubbub's notifications."
        : perm === "denied" ? "This browser blocks Hubbub's notifications; allow them in the site settings."
        : perm === "unsupported" ? "This browser cannot show notifications."
        : html`This browser has not been asked yet. <button class="btn small" onClick=${ask}>Allow notifications</button>`}</p>
    </fieldset>
    <label class="field"><span>Highlight words (besides your name), separated by commas</span>
      <input value=${words} onInput=${(e) => setWords(e.currentTarget.value)} placeholder="release, deploy"
        onBlur=${() => onChange({ ...settings, highlights: words.split(",").map((w) => w.trim()).filter(Boolean) })} /></label>
    <button class="btn" onClick=${() => onChange({ ...settings, highlights: words.split(",").map((w) => w.trim()).filter(Boolean) })}>Save highlight words</button>`;
}

function Account({ chat, onLogout }) {
  const [old, setOld] = useState("");
  const [pw, setPw] = useState("");
  const [pw2, setPw2] = useState("");
  const [msg, setMsg] = useState(null);
  async function change(e) {
    e.preventDefault();
    if (pw !== pw2) return setMsg({ error: true, text: "The new passwords do not match." });
    try {
      await rest.put("me/password", { old_password: old, new_password: pw });
      setMsg({ error: false, text: "Password changed. Your other sessions were logged out." });
      setOld("");
      setPw("");
      setPw2("");
    } catch (err) {
      setMsg({ error: true, text: err.code === "wrong_password" ? "The current password is wrong." : err.message });
    }
  }
  return html`<p>Logged in as <b>${chat.me.name}</b>${chat.me.role === "admin" ? " (admin)" : ""}.</p>
    <form class="stack" onSubmit=${change}><h3>Change password</h3>
      <label class="field"><span>Current password</span><input type="password" autocomplete="current-password" value=${old} onInput=${(e) => setOld(e.currentTarget.value)} required /></label>
      <label class="field"><span>New password</span><input type="password" autocomplete="new-password" value=${pw} onInput=${(e) => setPw(e.currentTarget.value)} required /></label>
      <label class="field"><span>New password again</span><input type="password" autocomplete="new-password" value=${pw2} onInput=${(e) => setPw2(e.currentTarget.value)} required /></label>
      ${msg && html`<p class=${msg.error ? "form-error" : "form-ok"} role="alert">${msg.text}</p>`}
      <button class="btn primary" type="submit">Change password</button>
    </form>
    <hr /><button class="btn danger" onClick=${onLogout}>Log out</button>`;
}

function Sessions() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const load = () => rest.get("sessions").then(setList, (e) => setError(e.message));
  useEffect(() => void load(), []);
  async function revoke(id) {
    try {
      await rest.del("sessions/" + encodeURIComponent(id));
      load();
    } catch (err) {
      setError(err.message);
    }
  }
  return html`<p class="hint">Where you are logged in. Ending a session logs that browser out at once.</p>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <ul class="sessions">${(list || []).map((s) => html`<li key=${s.id}>
      <div><b>${agentName(s.user_agent)}</b>${s.current && html` <span class="badge plain">this browser</span>`}
        <p class="muted small">${s.address || "unknown address"} · last active ${ago(s.last_seen)}</p></div>
      ${!s.current && html`<button class="btn small danger" onClick=${() => revoke(s.id)} aria-label=${"End session " + agentName(s.user_agent)}>End</button>`}
    </li>`)}</ul>`;
}

function agentName(ua) {
  if (!ua) return "Unknown client";
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : ua.split(/[ /]/)[0];
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}
