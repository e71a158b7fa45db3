// IRC networks (docs/irc.md): the Networks dialog (list with live state, add,
// edit, connect/disconnect, remove confirmed in place) and small helpers the
// sidebar and member list share.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { Dialog } from "./panels.js";

export const NET_STATE = {
  disconnected: "disconnected",
  connecting: "connecting…",
  registering: "connecting…",
  connected: "connected",
  waiting: "reconnecting soon",
  failed: "error",
  stopped: "stopped",
};

export function netStateClass(n) {
  if (!n) return "";
  if (n.state === "connected") return "net-ok";
  if (n.state === "failed" || n.error) return "net-err";
  if (n.state === "connecting" || n.state === "registering" || n.state === "waiting") return "net-busy";
  return "net-off";
}

/** Clear wording for the API's error codes. */
export function ircError(err) {
  switch (err?.code) {
    case "irc_disabled":
      return "IRC is switched off on this server.";
    case "irc_server_not_allowed":
      return "This Hubbub server may not connect to that IRC server (it is not on the allowed list, or is a private address).";
    case "irc_too_many_networks":
      return "You already have as many networks as this server allows. Remove one first.";
    case "irc_not_connected":
      return "The network is not connected. Connect it first (/connect).";
    case "irc_send_queue_full":
      return "The network's send queue is full; try again in a moment.";
    case "irc_unknown_command":
      return "Unknown command. Type /help for the list.";
    case "not_found":
      return "That network no longer exists.";
    case "invalid_request":
      return `Check the form: ${err.field ? err.field + ": " : ""}${err.message}`;
    default:
      return err?.message || String(err);
  }
}

const BLANK = {
  name: "", host: "", port: "", tls: true, accept_self_signed: false, nick: "", alt_nick: "", username: "", realname: "",
  password: "", sasl_mechanism: "", sasl_username: "", sasl_password: "", autojoin: "", connect_commands: "",
  auto_away: true, away_message: "",
};

function toForm(n) {
  return {
    ...BLANK,
    name: n.name, host: n.host, port: String(n.port || ""), tls: n.tls, accept_self_signed: n.accept_self_signed,
    nick: n.nick, alt_nick: n.alt_nick, username: n.username, realname: n.realname, sasl_username: n.sasl_username,
    sasl_mechanism: n.sasl_mechanism || "",
    autojoin: (n.autojoin || []).join(" "), connect_commands: (n.connect_commands || []).join("\n"),
    auto_away: n.auto_away !== false, away_message: n.away_message || "",
  };
}

function toBody(f, editing) {
  const body = {
    name: f.name.trim(), host: f.host.trim(), tls: f.tls, accept_self_signed: f.tls && f.accept_self_signed,
    nick: f.nick.trim(), alt_nick: f.alt_nick.trim(), username: f.username.trim(), realname: f.realname.trim(),
    sasl_username: f.sasl_username.trim(),
    autojoin: f.autojoin.split(/[\s,]+/).filter(Boolean).map((ch) => (/^[#&+!]/.test(ch) ? ch : "#" + ch)),
    connect_commands: f.connect_commands.split("\n").map((l) => l.trim()).filter(Boolean),
    auto_away: f.auto_away, away_message: f.away_message.trim(),
  };
  body.port = f.port.trim() ? Number(f.port) : f.tls ? 6697 : 6667;
  body.sasl_mechanism = f.sasl_mechanism;
  if (f.sasl_mechanism !== "PLAIN") body.sasl_username = f.sasl_mechanism ? body.sasl_username : "";
  // passwords are write-only: on an edit an empty field keeps the saved one
  if (f.password || !editing) body.password = f.password;
  if (f.sasl_password || !editing) body.sasl_password = f.sasl_password;
  return body;
}

function NetworkForm({ chat, network, onDone }) {
  const [f, setF] = useState(network ? toForm(network) : BLANK);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.type === "checkbox" ? e.currentTarget.checked : e.currentTarget.value });
  async function save(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (network) await chat.editNetwork(network.id, toBody(f, true));
      else await chat.addNetwork({ ...toBody(f, false), connect: true });
      onDone();
    } catch (err) {
      setError(ircError(err));
    } finally {
      setBusy(false);
    }
  }
  const text = (k, label, extra = {}) => html`<label class="field"><span>${label}</span>
    <input name=${k} value=${f[k]} onInput=${set(k)} autocapitalize="none" spellcheck="false" ...${extra} /></label>`;
  return html`<form class="network-form" onSubmit=${save} aria-label=${network ? "Edit " + network.name : "Add a network"}>
    <div class="grid2">
      ${text("name", "Name", { required: true, maxlength: 64, placeholder: "libera" })}
      ${text("host", "Server", { required: true, placeholder: "irc.libera.chat" })}
      ${text("port", "Port", { inputmode: "numeric", pattern: "[0-9]*", placeholder: f.tls ? "6697" : "6667" })}
      ${text("nick", "Nick", { required: true, maxlength: 64 })}
      ${text("alt_nick", "Alternative nick", { maxlength: 64 })}
      ${text("username", "Username", { maxlength: 64 })}
      ${text("realname", "Real name", { maxlength: 400 })}
      ${text("password", "Server password", { type: "password", autocomplete: "off", placeholder: network?.password_set ? "saved (empty keeps it)" : "" })}
      <label class="field"><span>Log in to services (SASL)</span>
        <select name="sasl_mechanism" value=${f.sasl_mechanism} onChange=${set("sasl_mechanism")}>
          <option value="">No</option>
          <option value="PLAIN">Account and password (PLAIN)</option>
          <option value="EXTERNAL">Client certificate (EXTERNAL)</option>
        </select></label>
      ${f.sasl_mechanism === "PLAIN" && text("sasl_username", "SASL account", { maxlength: 64, placeholder: f.nick })}
      ${f.sasl_mechanism === "PLAIN" && text("sasl_password", "SASL password", { type: "password", autocomplete: "off", placeholder: network?.sasl_password_set ? "saved (empty keeps it)" : "" })}
    </div>
    ${f.sasl_mechanism === "EXTERNAL" && !f.tls && html`<p class="form-error cert-block" role="alert">A client certificate is only sent over TLS: switch TLS on.</p>`}
    ${f.sasl_mechanism === "EXTERNAL" && !network?.cert_fingerprint && html`<p class="muted cert-block">Hubbub makes a client certificate for this network when you save; its fingerprint is shown here, to register with the network's services.</p>`}
    ${network?.cert_fingerprint && html`<${CertBlock} chat=${chat} n=${network} />`}
    <label class="check"><input type="checkbox" name="tls" checked=${f.tls} onChange=${set("tls")} /> TLS</label>
    ${f.tls && html`<label class="check"><input type="checkbox" name="accept_self_signed" checked=${f.accept_self_signed} onChange=${set("accept_self_signed")} /> Accept a self-signed certificate</label>`}
    ${text("autojoin", "Channels to join", { placeholder: "#hubbub #python" })}
    <label class="field"><span>Commands on connect (one a line)</span>
      <textarea name="connect_commands" rows="2" value=${f.connect_commands} onInput=${set("connect_commands")} spellcheck="false"></textarea></label>
    <label class="check"><input type="checkbox" name="auto_away" checked=${f.auto_away} onChange=${set("auto_away")} /> Away while no browser is attached</label>
    ${f.auto_away && text("away_message", "Away message", { placeholder: "Detached from Hubbub" })}
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="dialog-actions">
      <button type="button" class="btn" onClick=${onDone}>Cancel</button>
      <button class="btn primary" disabled=${busy}>${network ? "Save" : "Add and connect"}</button>
    </div>
  </form>`;
}

/**
 * The network's client certificate (SASL EXTERNAL / CertFP): its SHA-256
 * fingerprint, how to register it with NickServ, the SHA-512 one, copy, and
 * (not compact) a new certificate, confirmed in place. The key stays on the server.
 */
function CertBlock({ chat, n, compact = false }) {
  const [confirming, setConfirming] = useState(false);
  const [status, setStatus] = useState(null);
  const fp = n.cert_fingerprint;
  const hint = `/msg NickServ CERT ADD ${fp}`;
  async function copy(what) {
    try {
      await navigator.clipboard.writeText(what);
      setStatus("Copied.");
    } catch {
      setStatus("Select the text and copy it.");
    }
  }
  async function renew() {
    setStatus(null);
    try {
      await chat.newCertificate(n.id);
      setConfirming(false);
      setStatus("New certificate made: register its fingerprint.");
    } catch (err) {
      setStatus(ircError(err));
    }
  }
  return html`<div class="cert-block" role="group" aria-label="Client certificate">
    <div>Client certificate fingerprint (SHA-256)${n.sasl_mechanism === "EXTERNAL" ? ", for SASL EXTERNAL" : ""}:</div>
    <code class="fp" data-fp="sha256">${fp}</code>
    <div class="cert-hint">Register it with the network's services: <code>${hint}</code>
      (or, logged in with your password, <code>/msg NickServ CERT ADD</code>).</div>
    ${!compact && html`<details><summary>SHA-512 (some networks show this one)</summary><code class="fp" data-fp="sha512">${n.cert_fingerprint_sha512}</code></details>`}
    <div class="row-actions">
      <button type="button" class="btn small" onClick=${() => copy(fp)}>Copy fingerprint</button>
      ${!compact && !confirming && html`<button type="button" class="btn small" onClick=${() => setConfirming(true)}>New certificate</button>`}
      ${!compact && confirming && html`<span role="group" aria-label="Confirm new certificate">The old fingerprint stops working.
        <button type="button" class="btn small danger-fill" onClick=${renew}>Make a new one</button>
        <button type="button" class="btn small" onClick=${() => setConfirming(false)}>Keep</button></span>`}
      ${status && html`<span class="muted" role="status">${status}</span>`}
    </div>
  </div>`;
}

function NetworkRow({ chat, n, onEdit }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  const on = n.state !== "disconnected" && n.state !== "stopped";
  async function run(fn) {
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(ircError(err));
    }
  }
  return html`<li class=${"network-row " + netStateClass(n)} data-network=${n.id}>
    <div class="network-info">
      <b>${n.name}</b> <small class="muted">${n.host}:${n.port}${n.tls ? " (TLS)" : ""}</small>
      <div class="net-state"><span class="net-dot" aria-hidden="true"></span>
        <span class="state-text">${NET_STATE[n.state] || n.state}</span>${n.current_nick && html` as <b class="net-nick">${n.current_nick}</b>`}</div>
      ${n.error && html`<p class="form-error net-error">${n.error}</p>`}
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      ${n.cert_fingerprint && html`<${CertBlock} chat=${chat} n=${n} compact=${true} />`}
    </div>
    ${confirming
      ? html`<div class="row-actions" role="group" aria-label="Confirm removal"><span>Remove ${n.name} and its conversations?</span>
          <button class="btn small danger-fill" onClick=${() => run(() => chat.removeNetwork(n.id))}>Remove</button>
          <button class="btn small" onClick=${() => setConfirming(false)}>Keep</button></div>`
      : html`<div class="row-actions">
          <button class="btn small" onClick=${() => run(() => chat.connectNetwork(n.id, !on))}>${on ? "Disconnect" : "Connect"}</button>
          <button class="btn small" onClick=${() => onEdit(n)}>Edit</button>
          <button class="btn small danger" onClick=${() => setConfirming(true)}>Remove</button></div>`}
  </li>`;
}

export function NetworksDialog({ chat, onClose }) {
  const [mode, setMode] = useState(null); // null | "add" | a network being edited
  const list = [...chat.networks.values()].sort((a, b) => a.name.localeCompare(b.name));
  return html`<${Dialog} title="IRC networks" onClose=${onClose} wide=${true}>
    ${chat.ircDisabled
      ? html`<p class="form-error" role="alert">${ircError({ code: "irc_disabled" })}</p>`
      : mode
        ? html`<${NetworkForm} key=${mode === "add" ? "add" : mode.id} chat=${chat} network=${mode === "add" ? null : chat.networks.get(mode.id) || mode} onDone=${() => setMode(null)} />`
        : html`<ul class="network-list" aria-label="Your networks">
            ${list.map((n) => html`<${NetworkRow} key=${n.id} chat=${chat} n=${n} onEdit=${setMode} />`)}
            ${list.length === 0 && html`<li class="muted">No networks yet.</li>`}
          </ul>
          <div class="dialog-actions"><button class="btn primary" onClick=${() => setMode("add")}>Add a network</button></div>`}
  </${Dialog}>`;
}
