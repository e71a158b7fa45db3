// The IRC side of the chat model (a mixin of Chat, chat.js): the user's
// networks (the API's view, their live state from `network` frames) and what
// the composer's IRC commands need: open the channel a /join asked for (or the
// query a /msg made) when it appears, run a command on the network, and mirror
// the answer of a command that lands in the server buffer (/whois, /list …)
// into the conversation it was typed in.

import * as rest from "./api.js";
import { replyLine } from "./ircreplies.js";
import { stripMirc } from "./mirc.js";

export const IrcNetworks = (Base) => class extends Base {
  async loadNetworks() {
    try {
      const list = await rest.get("networks");
      this.ircDisabled = false;
      this.networks = new Map(list.map((n) => [n.id, n]));
    } catch (err) {
      if (err.code === "irc_disabled") this.ircDisabled = true;
    }
    this.changed();
  }

  onNetwork(n) {
    const old = this.networks.get(n.id);
    if (!old) {
      this.loadNetworks(); // one added elsewhere: its whole view
      return;
    }
    this.networks.set(n.id, { ...old, name: n.name ?? old.name, state: n.state, current_nick: n.nick ?? null, error: n.error ?? null });
    this.changed();
  }

  putNetwork(n) {
    this.networks.set(n.id, n);
    this.changed();
    return n;
  }

  async addNetwork(body) {
    return this.putNetwork(await rest.post("networks", body));
  }

  async editNetwork(id, body) {
    return this.putNetwork(await rest.patch(`networks/${id}`, body));
  }

  async removeNetwork(id) {
    await rest.del(`networks/${id}`);
    this.networks.delete(id);
    for (const c of [...this.convs.values()]) if (c.network === id) this.removeConv(c.id, true);
    this.changed();
  }

  async connectNetwork(id, on) {
    return this.putNetwork(await rest.post(`networks/${id}/${on ? "connect" : "disconnect"}`));
  }

  /** A new client certificate for SASL EXTERNAL (replacing any other); the network's new view. */
  async newCertificate(id) {
    await rest.post(`networks/${id}/certificate`);
    return this.putNetwork(await rest.get(`networks/${id}`));
  }

  /** Open the channel (by name) a /join asked for, now or when it appears. */
  openWhenJoined(network, name) {
    const folded = name.toLowerCase();
    const known = [...this.convs.values()].find((c) => c.network === network && c.name.toLowerCase() === folded);
    if (known) this.open(known.id);
    else this._wanted = { network, name: folded, until: Date.now() + 30_000 };
  }

  openWhenKnown(id) {
    if (this.convs.has(id)) this.open(id);
    else this._wanted = { id, until: Date.now() + 30_000 };
  }

  wanted(c) {
    const w = this._wanted;
    if (!w || Date.now() > w.until) return false;
    const hit = w.id ? w.id === c.id : c.network === w.network && c.name.toLowerCase() === w.name;
    if (hit) this._wanted = null;
    return hit;
  }

  async ircCommand(c, command) {
    return rest.post(`networks/${c.network}/command`, { command, conversation: c.id });
  }

  /**
   * A command whose answer lands in the server buffer (/whois, /list …) was
   * typed in `c`: show the answer there too, as one local notice, until its
   * end line, an error, 15 s or 40 lines (the rest stays in the server buffer).
   */
  expectReplies(c, title) {
    if (!c || c.name === "*") {
      this._replies = null; // typed in the server buffer: the answer is right there
      return;
    }
    this._replies = { network: c.network, conv: c.id, title, until: Date.now() + 15_000, lines: [], noticeId: null };
  }

  mirrorReply(buffer, m) {
    const r = this._replies;
    if (!r || r.network !== buffer.network) return;
    if (Date.now() > r.until || !this.convs.has(r.conv)) {
      this._replies = null;
      return;
    }
    const line = replyLine(m) || { text: m.text, level: "info" };
    if (!line.group && line.level !== "error") return; // not part of the answer (a notice of the server …)
    if (line.level !== "end") r.lines.push(stripMirc(line.text));
    const done = line.level === "end" || line.level === "error" || r.lines.length >= 40;
    if (r.lines.length >= 40) r.lines.push("… the rest is in the server messages.");
    if (done) this._replies = null;
    if (!r.lines.length) return;
    const text = [r.title, ...r.lines].join("\n");
    const level = line.level === "error" && r.lines.length === 1 ? "error" : "info";
    const list = this.notices.get(r.conv) || [];
    const found = list.find((n) => n.id === r.noticeId);
    if (found) {
      found.text = text;
      found.level = level;
    } else {
      r.noticeId = Math.random().toString(36).slice(2);
      list.push({ id: r.noticeId, text, level, ts: Date.now(), cls: "irc-replies" });
      this.notices.set(r.conv, list.slice(-20));
    }
    this.changed();
  }
};
