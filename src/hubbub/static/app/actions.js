// What the views ask of the chat model (a mixin of Chat, chat.js): send
// (through the outbox) and the sends not yet seen as messages, local notices,
// rooms and DMs (join, create, open, leave, topic, invite), typing, and the
// unread count and names (for completion) the views show.

import * as rest from "./api.js";

export const Actions = (Base) => class extends Base {
  send(c, text, kind = "text") {
    this.outbox.add(c.id, text, kind); // the client sends it when online
    this.atBottom = true;
  }

  /** Outbox entries of a conversation not yet seen as messages. */
  pending(c) {
    const entries = this.outbox.forConversation(c.id);
    if (!entries.length) return entries;
    // The message event of our own send may come before its ack: hide the
    // pending copy as soon as a message of ours with the same text follows it.
    const ownRecent = c.msgs.filter((m) => m.sender_id === this.me.id && m.ts >= entries[0].at - 60_000);
    const used = new Set();
    return entries.filter((e) => {
      const i = ownRecent.findIndex((m, j) => !used.has(j) && m.text === e.text && m.kind === e.kind && m.ts >= e.at - 60_000);
      if (i >= 0 && e.state === "sent") {
        used.add(i);
        return false;
      }
      return true;
    });
  }

  notice(id, text, level = "info") {
    if (!id) return;
    const list = this.notices.get(id) || [];
    list.push({ id: Math.random().toString(36).slice(2), text, level, ts: Date.now() });
    this.notices.set(id, list.slice(-20));
    this.changed();
  }

  clearNotices(id) {
    this.notices.delete(id);
    this.changed();
  }

  async joinRoom(name) {
    const clean = name.replace(/^#/, "").trim();
    let view;
    try {
      view = await rest.post("rooms/join", { name: clean });
    } catch (err) {
      if (err.code !== "not_found") throw err;
      view = await rest.post("rooms", { name: clean, visibility: "public" });
    }
    this.upsert(view);
    this.open(view.id);
    return view;
  }

  async createRoom(name, visibility, topic = "") {
    const view = await rest.post("rooms", { name: name.replace(/^#/, "").trim(), visibility, topic });
    this.upsert(view);
    this.open(view.id);
    return view;
  }

  async openDm(name) {
    const view = await rest.post("dms", { name: name.replace(/^@/, "").trim() });
    this.upsert(view);
    this.open(view.id);
    return view;
  }

  async leave(c) {
    await rest.post(`conversations/${c.id}/leave`);
    this.removeConv(c.id);
  }

  async setTopic(c, topic) {
    await rest.put(`conversations/${c.id}/topic`, { topic });
  }

  async invite(c, name) {
    await rest.post(`conversations/${c.id}/members`, { name: name.replace(/^@/, "") });
    this.loadMembers(c);
  }

  typing(c) {
    this.client.typing(c.id);
  }

  totalUnread() {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }

  names(c) {
    const set = new Set();
    for (const m of c?.members || []) set.add(m.name);
    for (const m of c?.ircMembers || []) set.add(m.nick);
    for (const m of c?.msgs.slice(-200) || []) if (m.sender) set.add(m.sender);
    set.delete(this.me.name);
    return [...set];
  }
};
