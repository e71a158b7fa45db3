// The list of conversations, grouped by network: rooms, then direct messages,
// with unread counts and mention badges; the connection state at the bottom.
import { html } from "htm/preact";
import { convTitle, initial, nickClass } from "../format.js";
import { Icon, Logo } from "./icons.js";
import { NET_STATE, netStateClass } from "./networks.js";

const STATE_TEXT = {
  idle: "Starting…",
  connecting: "Connecting…",
  resuming: "Catching up…",
  online: "Connected",
  waiting: "Offline",
  revoked: "Signed out",
  stopped: "Stopped",
};

export function ConnectionState({ chat }) {
  const { state, info } = chat.conn;
  let detail = "";
  if (state === "waiting") {
    if (!navigator.onLine) detail = "No network";
    else {
      const s = Math.max(0, Math.round((info.retryAt - Date.now()) / 1000));
      detail = s > 0 ? `Retrying in ${s}s` : "Retrying…";
    }
  }
  const queued = chat.outbox.entries.filter((e) => e.state !== "failed").length;
  return html`<div class=${"conn conn-" + state} role="status" aria-live="polite" data-state=${state}>
    <span class="conn-dot" aria-hidden="true"></span>
    <span class="conn-text"><span>${STATE_TEXT[state] || state}${detail && html` · ${detail}`}</span>
      ${state === "waiting" && info.reason && navigator.onLine && html`<small>${info.reason}</small>`}
      ${queued > 0 && html`<small>${queued} message${queued === 1 ? "" : "s"} waiting to send</small>`}</span>
    ${state === "waiting" && navigator.onLine &&
    html`<button class="btn small" onClick=${() => chat.client.reconnectNow()}>Retry now</button>`}
  </div>`;
}

function Item({ chat, c, onPick }) {
  const active = chat.active === c.id;
  const dm = c.kind === "dm" || c.kind === "query";
  const mentions = c.mentionSeqs.length;
  const unread = active ? 0 : c.unread;
  const online = dm && c.members?.some((m) => m.name === c.peer && m.online);
  // an IRC channel shows its own prefix (#, &, ...) as its icon, never the lock
  // of a private room (only its user sees it in Hubbub, but on IRC it is open)
  const chanPrefix = c.kind === "channel" && /^[#&+!]/.test(c.name) ? c.name[0] : null;
  const label = `${convTitle(c)}${unread ? `, ${unread} unread` : ""}${mentions ? `, ${mentions} mention${mentions > 1 ? "s" : ""}` : ""}`;
  return html`<li>
    <a href=${"#/c/" + c.id} class=${"conv" + (active ? " active" : "") + (unread ? " has-unread" : "")}
      aria-current=${active ? "page" : undefined} aria-label=${label} data-conv=${c.id}
      onClick=${(e) => { e.preventDefault(); onPick(c.id); }}>
      ${dm
        ? html`<span class=${"avatar tiny " + nickClass(c.peer || c.name)} aria-hidden="true">${initial(c.peer || c.name)}${online && html`<i class="presence-dot"></i>`}</span>`
        : html`<span class="conv-icon" aria-hidden="true">${chanPrefix || (c.visibility === "private" ? html`<${Icon} name="lock" size=${15} />` : "#")}</span>`}
      <span class="conv-name">${chanPrefix ? c.name.slice(1) : c.kind === "channel" ? c.name : c.kind === "query" ? convTitle(c) : dm ? c.peer || c.name : c.name}</span>
      ${mentions > 0 && !active && html`<span class="badge mention-badge" aria-hidden="true">@${mentions > 1 ? mentions : ""}</span>`}
      ${unread > 0 && html`<span class="badge" aria-hidden="true">${unread > 999 ? "999+" : unread}</span>`}
    </a>
  </li>`;
}

function IrcSection({ chat, n, convs, onPick, onNetworks }) {
  const net = chat.networks.get(n);
  const name = net ? net.name : "Network " + n;
  const channels = convs.filter((c) => c.kind === "channel");
  const queries = convs.filter((c) => c.kind === "query");
  return html`<section class="network irc" key=${n} aria-label=${name} data-network=${n}>
    <h2 class="network-name"><button class="linklike" onClick=${onNetworks} title="Manage networks">${name}</button>
      ${net && html`<span class=${"net-dot " + netStateClass(net)} aria-hidden="true"></span><small class="net-state-label">${NET_STATE[net.state] || net.state}${net.current_nick ? " · " + net.current_nick : ""}</small>`}</h2>
    ${net?.error && html`<p class="form-error small net-error">${net.error}</p>`}
    <ul class="conv-list" aria-label=${name + " channels"}>${channels.map((c) => html`<${Item} key=${c.id} chat=${chat} c=${c} onPick=${onPick} />`)}</ul>
    ${queries.length > 0 && html`<ul class="conv-list" aria-label=${name + " queries"}>${queries.map((c) => html`<${Item} key=${c.id} chat=${chat} c=${c} onPick=${onPick} />`)}</ul>`}
  </section>`;
}

export function Sidebar({ chat, onPick, onJoin, onDm, onSettings, onSearch, onLogout, onNetworks, open }) {
  const list = chat.sorted();
  const isIrcNet = (n) => chat.networks.has(n) || list.some((c) => c.network === n && (c.kind === "channel" || c.kind === "query"));
  const all = [...new Set(list.map((c) => c.network))];
  const networks = all.filter((n) => !isIrcNet(n));
  const ircNets = [...new Set([...chat.networks.keys(), ...all.filter(isIrcNet)])];
  return html`<nav class=${"sidebar" + (open ? " open" : "")} aria-label="Conversations" id="sidebar">
    <header class="sidebar-head">
      <${Logo} size=${28} />
      <span class="brand">Hubbub</span>
      <button class="icon-btn" onClick=${onSearch} aria-label="Search messages" title="Search (Ctrl+K)"><${Icon} name="search" /></button>
    </header>
    <div class="sidebar-scroll">
      ${networks.length === 0 && html`<p class="empty-side">No conversations yet. Join a room to start.</p>`}
      ${networks.map((n) => {
        const rooms = list.filter((c) => c.network === n && c.kind === "room");
        const dms = list.filter((c) => c.network === n && c.kind === "dm");
        const label = n === 1 ? "This server" : "Network " + n;
        return html`<section class="network" key=${n} aria-label=${label}>
          ${ircNets.length > 0 && html`<h2 class="network-name">${n === 1 ? location.host : label}</h2>`}
          <div class="section-head"><h2>Rooms</h2>
            <button class="icon-btn small" onClick=${onJoin} aria-label="Join or create a room" title="Join or create a room"><${Icon} name="plus" size=${16} /></button></div>
          <ul class="conv-list">${rooms.map((c) => html`<${Item} key=${c.id} chat=${chat} c=${c} onPick=${onPick} />`)}</ul>
          <div class="section-head"><h2>Direct messages</h2>
            <button class="icon-btn small" onClick=${onDm} aria-label="Start a direct message" title="Start a direct message"><${Icon} name="plus" size=${16} /></button></div>
          <ul class="conv-list">${dms.map((c) => html`<${Item} key=${c.id} chat=${chat} c=${c} onPick=${onPick} />`)}
            ${dms.length === 0 && html`<li class="empty-side small">Nobody yet</li>`}</ul>
        </section>`;
      })}
      ${networks.length === 0 && html`<div class="section-head"><h2>Rooms</h2>
        <button class="icon-btn small" onClick=${onJoin} aria-label="Join or create a room"><${Icon} name="plus" size=${16} /></button></div>`}
      ${!chat.ircDisabled && html`<div class="section-head"><h2>IRC</h2>
        <button class="icon-btn small" onClick=${onNetworks} aria-label="Networks" title="IRC networks"><${Icon} name="gear" size=${16} /></button></div>`}
      ${ircNets.map((n) => html`<${IrcSection} key=${n} chat=${chat} n=${n} convs=${list.filter((c) => c.network === n)} onPick=${onPick} onNetworks=${onNetworks} />`)}
    </div>
    <${ConnectionState} chat=${chat} />
    <footer class="sidebar-foot">
      <span class=${"avatar small " + nickClass(chat.me.name)} aria-hidden="true">${initial(chat.me.name)}</span>
      <span class="me-name" title=${chat.me.role === "admin" ? "admin" : ""}>${chat.me.name}${chat.me.role === "admin" && html`<small> admin</small>`}</span>
      <button class="icon-btn" onClick=${onSettings} aria-label="Settings" title="Settings"><${Icon} name="gear" /></button>
      <button class="icon-btn" onClick=${onLogout} aria-label="Log out" title="Log out"><${Icon} name="logout" /></button>
    </footer>
  </nav>`;
}
