// The WebSocket protocol client (docs/protocol.md). One object per page:
//
//   connecting ──ready──▶ resuming ──resumed──▶ online
//        ▲                                         │ close / error / ping timeout
//        └────────── waiting (backoff) ◀───────────┘
//   any ──4001──▶ revoked (log in again)      stop() ──▶ stopped
//
// It resumes with the positions the app gives (last seq per conversation), so
// nothing is missed and nothing repeats; it sends the outbox after every
// resume, in order, and once per connection (the nonce makes a resend of an
// entry whose ack was lost store nothing); it reconnects with exponential
// backoff and jitter (0.5 s doubling to 30 s), at once when the browser says
// it is back online or the tab becomes visible; and it pings, so a socket
// that died silently (laptop sleep, a lost Wi-Fi) is noticed within seconds.

const PING_EVERY = 20_000;
const PONG_WITHIN = 10_000;
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30_000;

export class ProtocolClient {
  /**
   * @param {object} o
   * @param {string} o.url             ws:// or wss:// URL of /api/ws
   * @param {() => object} o.positions conversation id -> last seq the app has
   * @param {Outbox} o.outbox
   * @param {(frame: object) => void} o.onFrame   every server frame but ack/pong
   * @param {(state: string, info: object) => void} o.onState
   */
  constructor({ url, positions, outbox, onFrame, onState, onRefused, pingEvery, pongWithin }) {
    this.url = url;
    this.pingEvery = pingEvery || PING_EVERY;
    this.pongWithin = pongWithin || PONG_WITHIN;
    this.onRefused = onRefused; // a socket closed before "ready": maybe logged out
    this.positions = positions;
    this.outbox = outbox;
    this.onFrame = onFrame;
    this.onState = onState;
    this.state = "idle";
    this.ws = null;
    this.attempt = 0;
    this.retryAt = 0;
    this.timers = {};
    this.pingSeq = 0;
    this.lastTyping = new Map();
    this.connections = 0;
    this._online = () => this.reconnectNow();
    this._offline = () => this.drop("the browser is offline");
    this._visible = () => {
      if (document.visibilityState === "visible") {
        if (this.state === "waiting") this.reconnectNow();
        else if (this.state === "online") this.ping();
      }
    };
    this.unsubscribe = outbox.subscribe(() => this.flush());
  }

  start() {
    window.addEventListener("online", this._online);
    window.addEventListener("offline", this._offline);
    document.addEventListener("visibilitychange", this._visible);
    this.connect();
  }

  stop() {
    window.removeEventListener("online", this._online);
    window.removeEventListener("offline", this._offline);
    document.removeEventListener("visibilitychange", this._visible);
    this.unsubscribe();
    this.clearTimers();
    this.setState("stopped");
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }

  setState(state, info = {}) {
    this.state = state;
    this.onState(state, { attempt: this.attempt, retryAt: this.retryAt, ...info });
  }

  clearTimers() {
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.timers = {};
  }

  connect() {
    this.clearTimers();
    if (this.state === "stopped" || this.state === "revoked") return;
    if (!navigator.onLine) {
      this.setState("waiting", { reason: "offline" });
      return; // the "online" event brings us back
    }
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect("cannot open a connection");
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(ws, ev.data);
    ws.onclose = (ev) => this.closed(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows with the code
    this.timers.open = setTimeout(() => {
      if (this.ws === ws && this.state !== "online") this.drop("the server does not answer");
    }, 15_000);
  }

  /** Close the current socket (if any) and reconnect after the backoff. */
  drop(reason) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      try {
        ws.close(4000);
      } catch {
        /* already closing */
      }
    }
    this.outbox.requeueInFlight();
    if (this.state !== "stopped" && this.state !== "revoked") this.scheduleReconnect(reason);
  }

  reconnectNow() {
    if (this.state === "waiting" || this.state === "idle") {
      this.attempt = 0;
      this.connect();
    }
  }

  scheduleReconnect(reason) {
    this.clearTimers();
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("waiting", { reason });
    if (navigator.onLine) this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  closed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.state === "connecting" && navigator.onLine) this.onRefused?.();
    this.outbox.requeueInFlight();
    if (code === 4001) {
      this.clearTimers();
      this.setState("revoked", { reason: reason || "your session ended" });
      return;
    }
    if (code === 4008) this.attempt = 0; // too slow: come back at once, nothing is lost
    this.scheduleReconnect(code === 1001 ? "the server is restarting" : "connection lost");
  }

  /** The server says our credentials are gone: stop for good. */
  revoke(reason = "your session ended") {
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = null;
      ws.close(1000);
    }
    this.setState("revoked", { reason });
  }

  sendFrame(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case "ready":
        this.onFrame(frame);
        this.setState("resuming");
        this.sendFrame({ op: "resume", positions: stringKeys(this.positions()) });
        return;
      case "resumed":
        clearTimeout(this.timers.open);
        this.attempt = 0;
        this.connections += 1;
        this.setState("online");
        this.onFrame(frame);
        this.schedulePing();
        this.flush();
        return;
      case "ack":
        this.outbox.done(frame.nonce);
        this.onFrame(frame);
        return;
      case "pong":
        clearTimeout(this.timers.pong);
        delete this.timers.pong;
        this.schedulePing();
        return;
      case "error":
        this.error(frame);
        return;
      default:
        this.onFrame(frame);
    }
  }

  error(frame) {
    const entry = frame.nonce ? this.outbox.get(frame.nonce) : null;
    if (entry) {
      if (frame.code === "rate_limited" || frame.code === "internal_error") {
        entry.state = "held";
        const wait = (frame.retry_after || 1) * 1000;
        setTimeout(() => {
          if (entry.state === "held") {
            entry.state = "queued";
            this.flush();
          }
        }, wait);
      } else {
        this.outbox.fail(frame.nonce, frame.message || frame.code);
      }
    }
    this.onFrame(frame);
  }

  /** Send every queued outbox entry, oldest first, once per connection. */
  flush() {
    if (this.state !== "online") return;
    for (const entry of this.outbox.queued()) {
      const ok = this.sendFrame({
        op: "send",
        nonce: entry.nonce,
        conversation: entry.conversation,
        text: entry.text,
        kind: entry.kind,
      });
      if (!ok) return;
      entry.state = "sent";
    }
  }

  schedulePing() {
    clearTimeout(this.timers.ping);
    this.timers.ping = setTimeout(() => this.ping(), this.pingEvery);
  }

  ping() {
    if (this.state !== "online") return;
    clearTimeout(this.timers.ping);
    if (this.timers.pong) return;
    this.sendFrame({ op: "ping", nonce: "p" + ++this.pingSeq });
    this.timers.pong = setTimeout(() => {
      delete this.timers.pong;
      this.drop("no answer from the server");
    }, this.pongWithin);
  }

  typing(conversation) {
    if (this.state !== "online") return;
    const last = this.lastTyping.get(conversation) || 0;
    if (Date.now() - last < 3000) return;
    this.lastTyping.set(conversation, Date.now());
    this.sendFrame({ op: "typing", conversation });
  }

  read(conversation, seq) {
    if (this.state !== "online") return false;
    return this.sendFrame({ op: "read", conversation, seq });
  }
}

function stringKeys(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (Number.isInteger(v) && v >= 0) out[String(k)] = v;
  return out;
}
