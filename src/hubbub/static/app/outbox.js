// Messages typed but not yet acknowledged by the server. Each is kept in
// localStorage under its own key (a write is synchronous: a reload a moment
// after Enter loses nothing) with the nonce chosen when it was typed. Resending
// a nonce is idempotent on the server (docs/protocol.md, "send"), so an entry is
// sent again after every reconnect or reload until its ack comes, and is
// stored by the server exactly once.

let counter = 0;

function newNonce() {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `w${Date.now().toString(36)}-${rand[0].toString(36)}${rand[1].toString(36)}`;
}

export class Outbox {
  constructor(scope) {
    this.prefix = `hubbub:${scope}:outbox:`;
    this.entries = [];
    this.listeners = new Set();
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(this.prefix)) continue;
      try {
        const entry = JSON.parse(localStorage.getItem(key));
        if (entry && entry.nonce && entry.conversation && typeof entry.text === "string") {
          entry.state = entry.error ? "failed" : "queued";
          this.entries.push(entry);
        }
      } catch {
        localStorage.removeItem(key);
      }
    }
    this.entries.sort((a, b) => a.at - b.at || a.n - b.n);
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }

  save(entry) {
    const { state, ...stored } = entry;
    localStorage.setItem(this.prefix + entry.nonce, JSON.stringify(stored));
  }

  add(conversation, text, kind = "text") {
    const entry = { nonce: newNonce(), conversation, text, kind, at: Date.now(), n: counter++, state: "queued" };
    this.save(entry);
    this.entries.push(entry);
    this.changed();
    return entry;
  }

  get(nonce) {
    return this.entries.find((e) => e.nonce === nonce);
  }

  /** The ack came: the message is stored; forget it. */
  done(nonce) {
    const i = this.entries.findIndex((e) => e.nonce === nonce);
    localStorage.removeItem(this.prefix + nonce);
    if (i >= 0) {
      this.entries.splice(i, 1);
      this.changed();
    }
  }

  fail(nonce, error) {
    const entry = this.get(nonce);
    if (!entry) return;
    entry.state = "failed";
    entry.error = error;
    this.save(entry);
    this.changed();
  }

  retry(nonce) {
    const entry = this.get(nonce);
    if (!entry) return;
    delete entry.error;
    entry.state = "queued";
    this.save(entry);
    this.changed();
  }

  /** Entries to (re)send, oldest first. */
  queued() {
    return this.entries.filter((e) => e.state === "queued");
  }

  forConversation(id) {
    return this.entries.filter((e) => e.conversation === id);
  }

  /** After a disconnect everything in flight goes back to the queue. */
  requeueInFlight() {
    for (const e of this.entries) if (e.state === "sent") e.state = "queued";
  }

  clear() {
    for (const e of this.entries) localStorage.removeItem(this.prefix + e.nonce);
    this.entries = [];
    this.changed();
  }
}
