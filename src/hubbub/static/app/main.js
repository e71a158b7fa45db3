// Hubbub's web client: boot (who am I?), then the login page or the chat.
import { html, render } from "htm/preact";
import { useEffect, useReducer, useRef, useState } from "preact/hooks";
import * as rest from "./api.js";
import { Chat } from "./chat.js";
import { convText, convTitle } from "./format.js";
import { stripMirc } from "./mirc.js";
import { applyTheme, loadSettings, onSystemTheme, saveSettings } from "./settings.js";
import { Composer } from "./ui/composer.js";
import { Icon } from "./ui/icons.js";
import { Login } from "./ui/login.js";
import { MessageList } from "./ui/messages.js";
import { Confirm, DmDialog, JoinDialog, MemberList, SearchPanel, SettingsDialog } from "./ui/panels.js";
import { Sidebar } from "./ui/sidebar.js";
import { NetworksDialog } from "./ui/networks.js";

let settings = loadSettings();
applyTheme(settings.theme);
onSystemTheme(() => applyTheme(settings.theme));

function useChat(chat) {
  const [, force] = useReducer((n) => n + 1, 0);
  useEffect(() => chat.subscribe(force), [chat]);
  // the connection line counts down to the next retry
  useEffect(() => {
    const t = setInterval(() => chat.conn.state === "waiting" && force(), 1000);
    return () => clearInterval(t);
  }, [chat]);
}

function notifier(chat) {
  return (c, m, mentioned) => {
    const s = chat.settings;
    const dm = c.kind === "dm" || c.kind === "query";
    if (!document.hidden || s.notify === "off") return;
    if (s.notify === "mentions" && !mentioned && !dm) return;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const title = dm ? m.sender : `${m.sender} in ${convTitle(c)}`;
    const text = stripMirc(m.text); // IRC formatting codes are not for a notification
    const body = m.kind === "action" ? `* ${m.sender} ${text}` : text;
    try {
      const n = new Notification(title, { body: body.slice(0, 200), tag: "hubbub-" + c.id, icon: "static/icons/icon-192.png" });
      n.onclick = () => {
        window.focus();
        chat.open(c.id);
        n.close();
      };
    } catch {
      /* some browsers only allow notifications from a service worker */
    }
  };
}

function NotifyBanner({ onDone }) {
  return html`<div class="banner" role="region" aria-label="Notifications">
    <span><${Icon} name="at" size=${16} /> Get a desktop notification when someone mentions you or sends you a direct message?</span>
    <button class="btn small primary" onClick=${async () => { await Notification.requestPermission(); onDone(); }}>Turn on</button>
    <button class="btn small ghost" onClick=${onDone}>Not now</button>
  </div>`;
}

function Header({ chat, c, onMenu, onMembers, membersOpen, onLeave, onSearch }) {
  const [editing, setEditing] = useState(false);
  const [topic, setTopic] = useState("");
  const [error, setError] = useState(null);
  if (!c) {
    return html`<header class="conv-head"><button class="icon-btn menu-btn" onClick=${onMenu} aria-label="Open the conversation list" aria-controls="sidebar"><${Icon} name="menu" /></button><h1 class="conv-title">Hubbub</h1></header>`;
  }
  const room = c.kind === "room" || c.kind === "channel";
  const peerOnline = !room && c.members?.some((m) => m.name === c.peer && m.online);
  async function save(e) {
    e.preventDefault();
    try {
      await chat.setTopic(c, topic);
      setEditing(false);
      setError(null);
    } catch (err) {
      setError(err.message);
    }
  }
  return html`<header class="conv-head">
    <button class="icon-btn menu-btn" onClick=${onMenu} aria-label="Open the conversation list" aria-controls="sidebar">
      <${Icon} name="menu" />${chat.totalUnread() - c.unread > 0 && html`<i class="menu-dot" aria-hidden="true"></i>`}</button>
    <div class="conv-head-text">
      <h1 class="conv-title">${c.kind === "channel" ? c.name : room ? html`<span class="hash" aria-hidden="true">#</span>${c.name}` : convTitle(c)}
        ${c.kind === "dm" && html`<span class=${"presence-label" + (peerOnline ? " on" : "")}>${peerOnline ? "online" : "offline"}</span>`}</h1>
      ${editing
        ? html`<form class="topic-form" onSubmit=${save}><input value=${topic} aria-label="Topic" maxlength="400"
            onInput=${(e) => setTopic(e.currentTarget.value)} onKeyDown=${(e) => e.key === "Escape" && (e.stopPropagation(), setEditing(false))} />
            <button class="btn small primary">Save</button><button type="button" class="btn small ghost" onClick=${() => setEditing(false)}>Cancel</button>
            ${error && html`<span class="form-error">${error}</span>`}</form>`
        : c.kind === "channel"
          ? html`<p class="topic irc-topic" title="Change it with /topic">${c.topic ? convText(c, c.topic, null) : html`<span class="muted">No topic</span>`}</p>`
        : room
          ? html`<button class="topic" title=${c.topic ? "Edit the topic" : "Set a topic"} onClick=${() => { setTopic(c.topic); setEditing(true); }}>
              ${c.topic ? convText(c, c.topic, null) : html`<span class="muted">Set a topic</span>`}</button>`
          : null}
    </div>
    <div class="head-actions">
      <button class="icon-btn" onClick=${onSearch} aria-label="Search" title="Search"><${Icon} name="search" /></button>
      <button class=${"icon-btn" + (membersOpen ? " pressed" : "")} onClick=${onMembers} aria-label="Members" aria-pressed=${membersOpen} aria-controls="members" title="Members">
        <${Icon} name="users" />${c.ircMembers ? html`<small class="count">${c.ircMembers.length}</small>` : c.members && html`<small class="count">${c.members.filter((m) => m.online).length}/${c.members.length}</small>`}</button>
      ${c.kind === "room" && html`<button class="icon-btn" onClick=${onLeave} aria-label=${"Leave #" + c.name} title="Leave room"><${Icon} name="door" /></button>`}
    </div>
  </header>`;
}

function Empty({ onJoin, onDm }) {
  return html`<div class="empty-main"><div>
    <${Icon} name="chat" size=${48} />
    <h2>Welcome to Hubbub</h2>
    <p>Join a room or start a direct message.</p>
    <p><button class="btn primary" onClick=${onJoin}>Join or create a room</button> <button class="btn" onClick=${onDm}>Message someone</button></p>
  </div></div>`;
}

function OfflineBar({ chat }) {
  const queued = chat.outbox.entries.filter((e) => e.state !== "failed").length;
  const s = Math.max(0, Math.round((chat.conn.info.retryAt - Date.now()) / 1000));
  return html`<div class="offline-bar" role="status">
    <span>${navigator.onLine ? `Connection lost. Reconnecting${s > 0 ? ` in ${s}s` : "…"}` : "You are offline."}
      ${queued > 0 ? ` ${queued} message${queued === 1 ? "" : "s"} will be sent when the connection is back.` : " Messages you write will be sent when it is back."}</span>
    ${navigator.onLine && html`<button class="btn small" onClick=${() => chat.client.reconnectNow()}>Reconnect now</button>`}
  </div>`;
}

function App({ chat, onLogout, firstAdmin }) {
  useChat(chat);
  const [welcome, setWelcome] = useState(!!firstAdmin);
  const [panel, setPanel] = useState(null); // join | dm | search | settings
  const [searchQuery, setSearchQuery] = useState("");
  const [drawer, setDrawer] = useState(false);
  const [members, setMembers] = useState(() => window.innerWidth > 1100);
  const [flash, setFlash] = useState(null);
  const [, setS] = useState(settings);
  const [askNotify, setAskNotify] = useState(false);
  const [confirming, setConfirming] = useState(null);
  const composer = useRef();
  const c = chat.current;

  const pick = (id) => {
    chat.open(id);
    setDrawer(false);
    setFlash(null);
    if (window.innerWidth > 760) requestAnimationFrame(() => composer.current?.focus());
  };

  // the hash names the open conversation: #/c/12 (back and forward work)
  useEffect(() => {
    const fromHash = () => {
      const m = location.hash.match(/^#\/c\/(\d+)$/);
      if (m && chat.convs.has(Number(m[1]))) chat.open(Number(m[1]));
    };
    fromHash();
    window.addEventListener("hashchange", fromHash);
    return () => window.removeEventListener("hashchange", fromHash);
  }, []);
  useEffect(() => {
    if (c && location.hash !== "#/c/" + c.id) history.replaceState(null, "", "#/c/" + c.id);
  }, [c?.id]);

  // title: unread count, then the conversation
  const unread = chat.totalUnread();
  useEffect(() => {
    document.title = `${unread ? `(${unread}) ` : ""}${c ? convTitle(c) + " · " : ""}Hubbub`;
  });

  // ask for notifications politely: once, after the first message arrives, never on load
  useEffect(() => {
    if (!("Notification" in window) || Notification.permission !== "default" || settings.notifyAsked || settings.notify === "off") return;
    const t = setTimeout(() => setAskNotify(true), 4000);
    return () => clearTimeout(t);
  }, []);

  // reading: mark read when the tab comes back and the list is at the bottom
  useEffect(() => {
    const vis = () => document.visibilityState === "visible" && chat.atBottom && chat.markRead(chat.current);
    document.addEventListener("visibilitychange", vis);
    window.addEventListener("focus", vis);
    return () => {
      document.removeEventListener("visibilitychange", vis);
      window.removeEventListener("focus", vis);
    };
  }, []);

  // keyboard: Alt+Up/Down between conversations, Esc closes, Ctrl+K searches
  useEffect(() => {
    const onKey = (e) => {
      if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
        e.preventDefault();
        const list = chat.sorted();
        if (!list.length) return;
        const here = list.findIndex((x) => x.id === chat.active);
        const step = e.key === "ArrowUp" ? -1 : 1;
        // Alt+Shift: the next conversation with unread messages
        for (let n = 1; n <= list.length; n++) {
          const c = list[(here + step * n + list.length * n) % list.length];
          if (!e.shiftKey || (c.unread > 0 && c.id !== chat.active)) {
            pick(c.id);
            break;
          }
        }
        requestAnimationFrame(() => composer.current?.focus());
      } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
        e.preventDefault();
        setSearchQuery("");
        setPanel("search");
      } else if (e.key === "Escape") {
        if (confirming) setConfirming(null);
        else if (panel) setPanel(null);
        else if (drawer) setDrawer(false);
        else if (members && window.innerWidth <= 1100) setMembers(false);
        else composer.current?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [panel, drawer, members, confirming]);

  function changeSettings(next) {
    settings = next;
    saveSettings(next);
    applyTheme(next.theme);
    document.documentElement.classList.toggle("compact", !!next.compact);
    chat.setSettings(next);
    setS(next);
  }
  useEffect(() => document.documentElement.classList.toggle("compact", !!settings.compact), []);

  // Logging out forgets the outbox: say so first when something is still in it.
  function logout() {
    const pending = chat.outbox.entries.length;
    if (!pending) return onLogout();
    setPanel(null);
    setConfirming({
      title: "Log out?",
      text: `${pending} message${pending === 1 ? " is" : "s are"} not sent yet and will be lost if you log out now. Stay, and ${pending === 1 ? "it goes" : "they go"} out as soon as the connection is back.`,
      action: "Log out anyway",
      danger: true,
      onConfirm: onLogout,
    });
  }

  function leave() {
    if (!c) return;
    const target = c;
    setConfirming({
      title: `Leave #${target.name}?`,
      text: target.visibility === "private" ? "It is a private room: you will need an invitation to come back." : "You can join it again at any time.",
      action: "Leave room",
      danger: true,
      onConfirm: () => chat.leave(target).catch((err) => chat.notice(target.id, `Could not leave: ${err.message}`, "error")),
    });
  }

  async function pickResult(m) {
    setPanel(null);
    const target = chat.convs.get(m.conversation);
    if (!target) return;
    pick(target.id);
    await chat.reveal(target, m.seq);
    chat.atBottom = false;
    setFlash(m.seq);
  }

  const ui = { search: (q) => { setSearchQuery(q); setPanel("search"); } };
  const doneAsking = () => {
    setAskNotify(false);
    changeSettings({ ...settings, notifyAsked: true });
  };

  return html`<div class=${"shell" + (members && c ? " with-members" : "")}>
    <${Sidebar} chat=${chat} open=${drawer} onPick=${pick} onJoin=${() => setPanel("join")} onDm=${() => setPanel("dm")}
      onSettings=${() => setPanel("settings")} onNetworks=${() => setPanel("networks")} onSearch=${() => { setSearchQuery(""); setPanel("search"); }} onLogout=${logout} />
    ${drawer && html`<div class="scrim" onClick=${() => setDrawer(false)} aria-hidden="true"></div>`}
    <main class="main" aria-label=${c ? convTitle(c) : "Hubbub"}>
      <${Header} key=${c?.id} chat=${chat} c=${c} onMenu=${() => setDrawer(true)} membersOpen=${members} onMembers=${() => setMembers(!members)}
        onLeave=${leave} onSearch=${() => { setSearchQuery(""); setPanel("search"); }} />
      ${chat.conn.state === "waiting" && html`<${OfflineBar} chat=${chat} />`}
      ${askNotify && html`<${NotifyBanner} onDone=${doneAsking} />`}
      ${welcome && html`<div class="banner" role="status"><span>Welcome! Yours is the first account here, so you are this server's admin.</span>
        <button class="btn small ghost" onClick=${() => setWelcome(false)}>OK</button></div>`}
      ${c ? html`<${MessageList} key=${c.id} chat=${chat} c=${c} flashSeq=${flash} />`
        : html`<${Empty} onJoin=${() => setPanel("join")} onDm=${() => setPanel("dm")} />`}
      <${Composer} chat=${chat} c=${c} ui=${ui} inputRef=${composer} />
    </main>
    ${c && members && html`<div class="scrim for-members" onClick=${() => setMembers(false)} aria-hidden="true"></div>`}
    ${c && html`<${MemberList} chat=${chat} c=${c} open=${members} onClose=${() => setMembers(false)}
      onDm=${async (n) => { try { await chat.openDm(n); setMembers(window.innerWidth > 1100); } catch (err) { chat.notice(c.id, err.message, "error"); } }} />`}
    ${confirming && html`<${Confirm} ...${confirming} onClose=${() => setConfirming(null)} />`}
    ${panel === "join" && html`<${JoinDialog} chat=${chat} onClose=${() => setPanel(null)} />`}
    ${panel === "dm" && html`<${DmDialog} chat=${chat} onClose=${() => setPanel(null)} />`}
    ${panel === "search" && html`<${SearchPanel} chat=${chat} initial=${searchQuery} onClose=${() => setPanel(null)} onPick=${pickResult} />`}
    ${panel === "networks" && html`<${NetworksDialog} chat=${chat} onClose=${() => setPanel(null)} />`}
    ${panel === "settings" && html`<${SettingsDialog} chat=${chat} settings=${settings} onChange=${changeSettings} onClose=${() => setPanel(null)} onLogout=${logout} />`}
  </div>`;
}

const ME_KEY = `hubbub:${new URL(document.baseURI).pathname}:me`;
const rememberMe = (user) => (user ? localStorage.setItem(ME_KEY, JSON.stringify(user)) : localStorage.removeItem(ME_KEY));
function rememberedMe() {
  try {
    return JSON.parse(localStorage.getItem(ME_KEY) || "null");
  } catch {
    return null;
  }
}

// A logout the server has not heard of yet (made while offline): the session cookie
// is HttpOnly, so only the server's answer ends it. It is sent again when the
// connection comes back and at the next start, until the server has answered.
const LOGOUT_KEY = `hubbub:${new URL(document.baseURI).pathname}:logout`;
let logoutRetry = null;

async function finishLogout() {
  if (!localStorage.getItem(LOGOUT_KEY)) return true;
  try {
    await rest.post("logout");
  } catch (err) {
    if (err.status === 0 || err.status >= 500) return false; // not reached: try again later
  }
  localStorage.removeItem(LOGOUT_KEY); // done, or the session was already gone (401)
  return true;
}

function logoutUntilDone() {
  if (logoutRetry) return;
  const attempt = async () => {
    if (await finishLogout()) {
      clearInterval(logoutRetry);
      window.removeEventListener("online", attempt);
      logoutRetry = null;
    }
  };
  logoutRetry = setInterval(attempt, 15000);
  window.addEventListener("online", attempt);
}

function Root() {
  const [me, setMe] = useState(undefined); // undefined: asking; null: logged out
  const [chat, setChat] = useState(null);
  const [notice, setNotice] = useState(null);
  const [firstAdmin, setFirstAdmin] = useState(false);

  useEffect(() => {
    if (localStorage.getItem(LOGOUT_KEY)) {
      rememberMe(null);
      finishLogout().then((done) => {
        if (!done) {
          setNotice("You are logged out. The server will be told when it can be reached.");
          logoutUntilDone();
        }
        setMe(null);
      });
      return;
    }
    rest.get("me").then(
      (r) => {
        rememberMe(r.user);
        setMe(r.user);
      },
      (err) => {
        const saved = rememberedMe();
        if (err.code !== "unauthorized" && saved) {
          setMe(saved); // offline or the server is down: the chat from the cache, then catch up
          return;
        }
        if (err.code === "unauthorized") rememberMe(null);
        else setNotice(`The server could not be reached (${err.message}).`);
        setMe(null);
      },
    );
  }, []);

  useEffect(() => {
    if (!me) return;
    const instance = new Chat({ me, settings, onNotify: null });
    instance.onNotify = notifier(instance);
    const unsub = instance.subscribe(() => {
      if (instance.conn.state === "revoked") {
        instance.stop();
        instance.forget();
        rememberMe(null);
        setNotice("Your session ended (logged out elsewhere, or the password changed). Log in again.");
        setChat(null);
        setMe(null);
      }
    });
    setChat(instance);
    instance.start();
    window.hubbub = instance; // for the curious and for tests
    return () => {
      unsub();
      instance.stop();
    };
  }, [me]);

  async function logout() {
    localStorage.setItem(LOGOUT_KEY, "1");
    const told = await finishLogout();
    if (!told) logoutUntilDone();
    if (chat) {
      chat.stop();
      await chat.forget();
    }
    rememberMe(null);
    setNotice(told ? "You are logged out." : "You are logged out. The server will be told when it can be reached.");
    setChat(null);
    setMe(null);
  }

  if (me === undefined) return html`<div class="boot" role="status">Loading Hubbub…</div>`;
  if (!me) return html`<${Login} notice=${notice} onLogin=${(user, created) => { localStorage.removeItem(LOGOUT_KEY); rememberMe(user); setFirstAdmin(created && user.role === "admin"); setMe(user); }} />`;
  if (!chat) return html`<div class="boot" role="status">Loading Hubbub…</div>`;
  return html`<${App} chat=${chat} onLogout=${logout} firstAdmin=${firstAdmin} />`;
}

render(html`<${Root} />`, document.getElementById("app"));

// the service worker keeps the page for offline reloads (secure contexts only)
if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("sw.js").catch(() => {});
}

// keep the layout above an on-screen keyboard where the browser does not resize it
if (window.visualViewport) {
  const fit = () => document.documentElement.style.setProperty("--vvh", `${window.visualViewport.height}px`);
  window.visualViewport.addEventListener("resize", fit);
  fit();
}
