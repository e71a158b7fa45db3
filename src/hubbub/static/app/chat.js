// The chat model: conversations, their messages, members, presence and
// typing; fed by the protocol client and the REST API, read by the views.
//
// Per conversation the loaded messages are one contiguous run of seqs ending
// at `hi`, the position sent on resume. A live message is appended only when
// it is hi + 1 (a duplicate is dropped; a gap, which the server never leaves,
// would be filled over REST). Older history is prepended page by page. The
// newest messages of every conversation are cached in IndexedDB with their hi,
// so a reload shows them at once and resumes from there.
//
// The IRC networks (networks.js) and what the views ask of the model
// (actions.js) are mixins of Chat, in modules of their own.

import { Actions } from "./actions.js";
import * as rest from "./api.js";
import { wsUrl } from "./api.js";
import { cacheDeletePrefix, cacheGetPrefix, cacheSet } from "./cache.js";
import { ProtocolClient } from "./client.js";
import { highlighter, mentions } from "./format.js";
import { IrcNetworks } from "./networks.js";
import { Outbox } from "./outbox.js";

const CACHE_MESSAGES = 200;
const PAGE = 50;
const TYPING_FOR = 6000;
const MENTION_TERMS = 6; // searched for the mentions of a room not loaded yet
const COUNTED = new Set(["text", "action", "notice", "topic", "event", "system"]);

export class Chat extends Actions(IrcNetworks(Object)) {
  constructor({ me, settings, onNotify }) {
    super();
    this.me = me;
    this.settings = settings;
    this.onNotify = onNotify;
    this.scope = `${new URL(document.baseURI).pathname}:${me.id}`;
    this.convs = new Map();
    this.networks = new Map(); // IRC networks: id -> the API's view, live state from `network` frames
    this.ircDisabled = false;
    this.online = new Set();
    this.active = null;
    this.conn = { state: "idle", info: {} };
    this.notices = new Map(); // conversation id -> local notices (help, errors)
    this.listeners = new Set();
    this.version = 0;
    this.dirty = new Set();
    this.ready = false;
    this.atBottom = true;
    this.outbox = new Outbox(this.scope);
    this.outbox.subscribe(() => this.changed());
    this.matcher = highlighter(me.name, settings.highlights);
    const pingMs = Number(localStorage.getItem("hubbub:ping-ms")) || undefined; // tests: a faster keepalive
    this.client = new ProtocolClient({
      url: wsUrl(),
      pingEvery: pingMs,
      pongWithin: pingMs,
      positions: () => this.positions(),
      outbox: this.outbox,
      onFrame: (f) => this.frame(f),
      onRefused: () => {
        // the upgrade is refused with 401 when the session is gone; a browser
        // only sees a closed socket, so ask the API who we are
        rest.get("me").catch((err) => err.code === "unauthorized" && this.client.revoke());
      },
      onState: (state, info) => {
        this.conn = { state, info };
        this.changed();
      },
    });
    this._tick = setInterval(() => this.expireTyping(), 1000);
    this._flush = () => this.flushCache();
    window.addEventListener("pagehide", this._flush);
    document.addEventListener("visibilitychange", this._flush);
  }

  // --- plumbing ----------------------------------------------------------------
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    this.version++;
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      for (const fn of this.listeners) fn(this.version);
    });
  }

  setSettings(settings) {
    this.settings = settings;
    this.matcher = highlighter(this.me.name, settings.highlights);
    this.changed();
  }

  async start() {
    await this.loadCache();
    this.client.start();
  }

  stop() {
    clearInterval(this._tick);
    window.removeEventListener("pagehide", this._flush);
    document.removeEventListener("visibilitychange", this._flush);
    this.client.stop();
    this.flushCache();
  }

  positions() {
    const out = {};
    for (const c of this.convs.values()) if (c.hi !== null) out[c.id] = c.hi;
    return out;
  }

  // --- cache -------------------------------------------------------------------
  async loadCache() {
    const rows = await cacheGetPrefix(this.scope + ":c:");
    for (const [, row] of rows) {
      if (!row || !row.conv) continue;
      const c = this.makeConv(row.conv);
      c.msgs = row.msgs || [];
      c.hi = row.hi ?? null;
      c.mentionSeqs = row.mentionSeqs || [];
      c.cached = true;
      this.convs.set(c.id, c);
    }
    const active = Number(sessionStorage.getItem(this.scope + ":active")) || null;
    if (this.convs.size) this.active = this.convs.has(active) ? active : this.sorted()[0]?.id ?? null;
    this.changed();
  }

  markDirty(c) {
    this.dirty.add(c.id);
    if (this._cacheTimer) return; // one write per burst (a replay of many messages)
    this._cacheTimer = setTimeout(() => this.flushCache(), 50);
  }

  flushCache() {
    clearTimeout(this._cacheTimer);
    this._cacheTimer = null;
    for (const id of this.dirty) {
      const c = this.convs.get(id);
      if (!c) continue;
      const { msgs, hi, mentionSeqs } = c;
      cacheSet(`${this.scope}:c:${id}`, {
        conv: this.summary(c),
        msgs: msgs.slice(-CACHE_MESSAGES),
        hi,
        mentionSeqs: mentionSeqs.slice(-100),
      });
    }
    this.dirty.clear();
  }

  async forget() {
    this.outbox.clear();
    await cacheDeletePrefix(this.scope + ":");
  }

  summary(c) {
    const { id, network, kind, name, topic, visibility, last_seq, read_seq, unread, role, peer } = c;
    return { id, network, kind, name, topic, visibility, last_seq, read_seq, unread, role, peer };
  }

  // --- conversations -----------------------------------------------------------
  makeConv(data) {
    return {
      ...data,
      msgs: [],
      hi: null,
      mentionSeqs: [],
      members: null,
      typing: new Map(),
      loadingOlder: false,
      markerSeq: null,
      filling: false,
      maxLive: 0,
    };
  }

  /** A conversation from the server (ready, a conversation event, a REST answer). */
  upsert(data, snapshot = false) {
    let c = this.convs.get(data.id);
    if (!c) {
      c = this.makeConv(data);
      this.convs.set(c.id, c);
    } else {
      const lastSeq = snapshot ? data.last_seq : Math.max(c.last_seq, data.last_seq);
      const readSeq = snapshot ? data.read_seq : Math.max(c.read_seq, data.read_seq);
      Object.assign(c, this.summary({ ...c, ...data, last_seq: lastSeq, read_seq: readSeq }));
      this.recount(c);
    }
    if (c.hi === null) {
      // nothing of it here yet: the unread messages are not loaded, so count
      // their mentions on the server
      c.hi = data.last_seq;
      if (snapshot) this._mentions = (this._mentions || Promise.resolve()).then(() => this.countMentions(c)); // one room at a time
    }
    if (snapshot && c.hi > data.last_seq) {
      // the server knows less than our cache (its data was reset): start over
      c.msgs = [];
      c.hi = data.last_seq;
      c.mentionSeqs = [];
    }
    this.markDirty(c);
    return c;
  }

  sorted() {
    return [...this.convs.values()].sort((a, b) => {
      const ka = a.kind === "dm" || a.kind === "query" ? 1 : 0;
      const kb = b.kind === "dm" || b.kind === "query" ? 1 : 0;
      if (a.network !== b.network) return a.network - b.network;
      if (ka !== kb) return ka - kb;
      const na = (a.peer || a.name).toLowerCase();
      const nb = (b.peer || b.name).toLowerCase();
      return na < nb ? -1 : na > nb ? 1 : 0;
    });
  }

  get current() {
    return this.active ? this.convs.get(this.active) : null;
  }

  open(id) {
    const c = this.convs.get(id);
    if (!c) return;
    if (this.active !== id) {
      this.active = id;
      sessionStorage.setItem(this.scope + ":active", String(id));
      c.markerSeq = c.unread > 0 ? c.read_seq : null;
      this.atBottom = true;
    }
    if (c.msgs.length < 30 && this.hasOlder(c)) this.loadOlder(c);
    this.loadMembers(c);
    this.changed();
  }

  hasOlder(c) {
    const lo = c.msgs.length ? c.msgs[0].seq : (c.hi ?? 0) + 1;
    return lo > 1;
  }

  async loadOlder(c) {
    if (c.loadingOlder || !this.hasOlder(c)) return;
    c.loadingOlder = true;
    this.changed();
    const lo = c.msgs.length ? c.msgs[0].seq : c.hi + 1;
    try {
      const page = await rest.get(`conversations/${c.id}/messages${rest.query({ before: lo, limit: PAGE })}`);
      const now = c.msgs.length ? c.msgs[0].seq : c.hi + 1;
      const older = page.messages.filter((m) => m.seq < now);
      if (older.length && older[older.length - 1].seq === now - 1) {
        c.msgs = older.concat(c.msgs);
        this.markDirty(c);
      } // else the window moved meanwhile (too far behind): the next scroll asks again
      c.historyError = null;
    } catch (err) {
      c.historyError = err.message;
    } finally {
      c.loadingOlder = false;
      this.changed();
    }
  }

  /** Make sure `seq` is loaded (for a search result): page back until it is. */
  async reveal(c, seq) {
    for (let i = 0; i < 40 && this.hasOlder(c) && (!c.msgs.length || c.msgs[0].seq > seq); i++) {
      await this.loadOlder(c);
    }
  }

  async loadMembers(c) {
    if (c.kind === "query") return;
    if (c.kind === "channel") {
      // IRC: kept up to date by `irc_members` frames; read once over REST when
      // none came yet (after a reload, the list is not replayed)
      if (c.ircMembers || c._membersLoading) return;
      c._membersLoading = true;
      try {
        const body = await rest.get(`conversations/${c.id}/irc-members`);
        if (!c.ircMembers) c.ircMembers = body.members;
        this.changed();
      } catch {
        /* the next irc_members frame brings it */
      } finally {
        c._membersLoading = false;
      }
      return;
    }
    if (c._membersLoading) return;
    c._membersLoading = true;
    try {
      c.members = await rest.get(`conversations/${c.id}/members`);
      for (const m of c.members) if (m.online) this.online.add(m.user_id);
      this.changed();
    } catch {
      /* shown as "members unavailable" */
    } finally {
      c._membersLoading = false;
    }
  }

  // --- frames ------------------------------------------------------------------
  frame(f) {
    switch (f.type) {
      case "ready":
        return this.onReady(f);
      case "resumed":
        this.ready = true;
        return this.changed();
      case "message":
        return this.onMessage(f, true);
      case "typing":
        return this.onTyping(f);
      case "read":
        return this.onRead(f.conversation, f.seq);
      case "presence":
        if (f.status === "online") this.online.add(f.user_id);
        else this.online.delete(f.user_id);
        for (const c of this.convs.values()) {
          if (!c.members) continue;
          const m = c.members.find((x) => x.user_id === f.user_id);
          if (m) m.online = f.status === "online";
        }
        return this.changed();
      case "conversation": {
        const c = this.upsert(f.conversation);
        if (!this.active || this.wanted(c)) this.open(c.id); // the first one (an invitation, a DM), or one just asked for
        return this.changed();
      }
      case "network":
        return this.onNetwork(f.network);
      case "irc_members": {
        const c = this.convs.get(f.conversation);
        if (c) {
          c.ircMembers = f.members;
          this.changed();
        }
        return;
      }
      case "left":
        return this.removeConv(f.conversation);
      case "too_far_behind":
        return this.tooFarBehind(f.conversation, f.last_seq);
      case "revoked":
        return; // the close code 4001 follows for our own session
      case "error":
        if (!f.nonce) this.notice(this.active, `Server: ${f.message}`, "error");
        return;
      default:
    }
  }

  onReady(f) {
    const seen = new Set();
    for (const data of f.conversations) {
      this.upsert(data, true);
      seen.add(data.id);
    }
    for (const id of [...this.convs.keys()]) if (!seen.has(id)) this.removeConv(id, true);
    this.online = new Set(f.online);
    this.limits = f.limits;
    // a DM's peer shows online in the sidebar: its two members are cheap to load
    for (const c of this.convs.values()) if (c.kind === "dm" && !c.members) this.loadMembers(c);
    this.loadNetworks();
    if (!this.active || !this.convs.has(this.active)) {
      const first = this.sorted()[0];
      if (first) this.open(first.id);
    } else {
      this.open(this.active);
    }
    this.changed();
  }

  removeConv(id, quiet = false) {
    if (!this.convs.has(id)) return;
    this.convs.delete(id);
    this.dirty.delete(id);
    cacheDeletePrefix(`${this.scope}:c:${id}`);
    if (this.active === id) {
      this.active = null;
      const first = this.sorted()[0];
      if (first && !quiet) this.open(first.id);
      else if (first) this.active = first.id;
    }
    this.changed();
  }

  tooFarBehind(id, lastSeq) {
    const c = this.convs.get(id);
    if (!c) return;
    c.msgs = [];
    c.hi = lastSeq;
    c.last_seq = Math.max(c.last_seq, lastSeq);
    this.markDirty(c);
    if (this.active === id) this.loadOlder(c);
    this.changed();
  }

  onMessage(m, live) {
    const c = this.convs.get(m.conversation);
    if (!c) return;
    if (m.seq <= c.hi) return; // already have it
    if (m.seq > c.hi + 1) {
      c.maxLive = Math.max(c.maxLive, m.seq);
      this.fillGap(c);
      return;
    }
    c.msgs.push(m);
    if (c.msgs.length > 2000 && this.active !== c.id) c.msgs = c.msgs.slice(-CACHE_MESSAGES);
    c.hi = m.seq;
    c.last_seq = Math.max(c.last_seq, m.seq);
    c.typing.delete(m.sender);
    const mine = m.sender_id === this.me.id;
    if (mine) {
      c.read_seq = Math.max(c.read_seq, m.seq);
    } else if (COUNTED.has(m.kind) && (m.kind === "text" || m.kind === "action" || m.kind === "notice")) {
      // IRC: the server knows the nick and highlight words (meta.mention)
      const irc = c.kind === "channel" || c.kind === "query";
      const mentioned = irc ? !!m.meta?.mention : mentions(m.text, this.matcher);
      if (mentioned) c.mentionSeqs.push(m.seq);
      if (live) this.onNotify?.(c, m, mentioned);
    }
    if (m.kind === "topic") c.topic = m.text;
    if ((m.kind === "join" || m.kind === "part") && c.members) this.loadMembers(c);
    if (live && m.kind === "system" && c.kind === "query" && c.name === "*") this.mirrorReply(c, m);
    this.recount(c);
    if (this.active === c.id && this.isWatching()) this.markRead(c);
    this.markDirty(c);
    this.changed();
  }

  async fillGap(c) {
    if (c.filling) return;
    c.filling = true;
    try {
      for (let rounds = 0; rounds < 50 && c.maxLive > c.hi; rounds++) {
        const page = await rest.get(`conversations/${c.id}/messages${rest.query({ after: c.hi, limit: 200 })}`);
        for (const m of page.messages) this.onMessage(m, false);
        if (page.messages.length < 200 && c.maxLive <= c.hi) break;
      }
    } catch {
      /* the next reconnect resumes from hi */
    } finally {
      c.filling = false;
    }
  }

  /** The mentions among a room's unread messages that this browser has not
   * loaded: a search per term (the name and the highlight words) in the room,
   * each hit checked with the same matcher as live messages. Bounded: at most
   * MENTION_TERMS terms and the newest 50 hits of each. */
  async countMentions(c) {
    if (c.kind !== "room" || c.unread <= 0) return;
    const readSeq = c.read_seq;
    const terms = [this.me.name, ...(this.settings.highlights || [])].slice(0, MENTION_TERMS);
    const found = new Set(c.mentionSeqs);
    try {
      for (const q of terms) {
        const page = await rest.get(`search${rest.query({ q, conversation: c.id, limit: 50 })}`);
        for (const m of page.messages) {
          if (m.seq > readSeq && m.seq <= c.last_seq && m.sender_id !== this.me.id && mentions(m.text, this.matcher)) {
            found.add(m.seq);
          }
        }
      }
    } catch {
      return; // offline, or the room is gone: the badge counts what arrives
    }
    c.mentionSeqs = [...found].sort((a, b) => a - b);
    this.recount(c);
    this.markDirty(c);
    this.changed();
  }

  recount(c) {
    c.unread = Math.max(0, c.last_seq - c.read_seq);
    c.mentionSeqs = c.mentionSeqs.filter((s) => s > c.read_seq);
  }

  onRead(id, seq) {
    const c = this.convs.get(id);
    if (!c) return;
    c.read_seq = Math.max(c.read_seq, seq);
    this.recount(c);
    this.markDirty(c);
    this.changed();
  }

  isWatching() {
    return document.visibilityState === "visible" && this.atBottom;
  }

  markRead(c) {
    if (!c || c.read_seq >= c.hi) return;
    const seq = c.hi;
    c.read_seq = seq;
    this.recount(c);
    this.markDirty(c);
    if (!this.client.read(c.id, seq)) {
      rest.put(`conversations/${c.id}/read`, { seq }).catch(() => {});
    }
    this.changed();
  }

  onTyping(f) {
    const c = this.convs.get(f.conversation);
    if (!c || f.user === this.me.name) return;
    c.typing.set(f.user, Date.now() + TYPING_FOR);
    this.changed();
  }

  expireTyping() {
    const now = Date.now();
    let any = false;
    for (const c of this.convs.values()) {
      for (const [name, until] of c.typing) {
        if (until < now) {
          c.typing.delete(name);
          any = true;
        }
      }
    }
    if (any) this.changed();
  }
}
