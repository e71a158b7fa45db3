// Log in and sign up, with clear errors: wrong password, rate limit (with its
// wait), closed registration, names taken or invalid. The server tells before
// anyone types whether sign-up is open, and whether this is a new server whose
// first account becomes its admin (GET /api/registration).
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { get, post, waitWords } from "../api.js";
import { Logo } from "./icons.js";

function explain(err, mode) {
  switch (err.code) {
    case "unauthorized":
      return "Wrong name or password.";
    case "rate_limited":
      return `Too many attempts. Try again in ${waitWords(err.retryAfter || 60)}.`;
    case "registration_closed":
      return "Registration is closed on this server. Ask an admin to create an account for you.";
    case "name_taken":
      return "That name is taken. Pick another one.";
    case "invalid_name":
      return err.message || "That name is not allowed.";
    case "bad_request":
      return err.message;
    case "invalid_request":
      return err.field === "password" ? "Enter a password." : err.field === "name" ? "Enter a name." : err.message;
    case "network":
      return err.message;
    default:
      return mode === "login" ? `Could not log in: ${err.message}` : `Could not create the account: ${err.message}`;
  }
}

export function Login({ onLogin, notice }) {
  const [mode, setMode] = useState("login");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [until, setUntil] = useState(0);
  const [, tick] = useState(0);
  // null until the server answers: the form then offers what the server allows
  const [registration, setRegistration] = useState(null);
  const nameRef = useRef();

  useEffect(() => {
    let alive = true;
    get("registration")
      .then((info) => {
        if (!alive) return;
        setRegistration(info);
        if (!info.open) setMode("login");
        else if (info.first_account) setMode("register");
      })
      .catch(() => {}); // unknown: both forms stay offered, the server still decides
    return () => { alive = false; };
  }, []);
  useEffect(() => nameRef.current?.focus(), [mode]);
  useEffect(() => {
    if (!until) return;
    const t = setInterval(() => {
      if (Date.now() >= until) {
        setUntil(0);
        setError(null);
      } else tick((n) => n + 1);
    }, 1000);
    return () => clearInterval(t);
  }, [until]);

  async function submit(ev) {
    ev.preventDefault();
    if (busy || until) return;
    setError(null);
    if (!name.trim() || !password) {
      setError("Enter your name and password.");
      return;
    }
    setBusy(true);
    try {
      if (mode === "login") {
        const res = await post("login", { name: name.trim(), password });
        onLogin(res.user, false);
      } else {
        const user = await post("register", { name: name.trim(), password });
        onLogin(user, true);
      }
    } catch (err) {
      if (err.code === "rate_limited") setUntil(Date.now() + (err.retryAfter || 60) * 1000);
      setError(explain(err, mode));
      setBusy(false);
    }
  }

  const wait = until ? ` (${waitWords((until - Date.now()) / 1000)} left)` : "";
  const login = mode === "login";
  const closed = registration !== null && !registration.open;
  const first = registration !== null && registration.first_account;
  return html`
    <main class="auth">
      <form class="auth-card" onSubmit=${submit} aria-labelledby="auth-title" novalidate>
        <div class="auth-brand"><${Logo} size=${40} /><span>Hubbub</span></div>
        <h1 id="auth-title">${login ? "Log in" : "Create an account"}</h1>
        ${notice && html`<p class="auth-notice" role="status">${notice}</p>`}
        <label class="field">
          <span>Name</span>
          <input ref=${nameRef} name="name" autocomplete="username" autocapitalize="none" spellcheck="false"
            value=${name} onInput=${(e) => setName(e.currentTarget.value)} maxlength="64" required />
        </label>
        <label class="field">
          <span>Password</span>
          <input type="password" name="password" autocomplete=${login ? "current-password" : "new-password"}
            value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} required />
        </label>
        ${error && html`<p class="form-error" role="alert" id="auth-error">${error}${wait}</p>`}
        <button class="btn primary wide" type="submit" disabled=${busy || !!until}>
          ${busy ? "…" : login ? "Log in" : "Create account"}
        </button>
        ${closed
          ? html`<p class="hint" id="registration-closed">
              ${first
                ? html`Registration is closed and this server has no account yet: create the first one on the server with <code>hubbub user add</code>.`
                : "Registration is closed on this server. Ask an admin to create an account for you."}
            </p>`
          : html`<p class="auth-switch">
              ${login ? "New here? " : "Have an account? "}
              <button type="button" class="linklike" onClick=${() => { setMode(login ? "register" : "login"); setError(null); }}>
                ${login ? "Create an account" : "Log in"}
              </button>
            </p>`}
        ${!login && !closed && (first || registration === null) && html`<p class="hint">${first
          ? "This server is new: the account you create now becomes its admin."
          : "The first account on a new server becomes its admin."}</p>`}
      </form>
    </main>
  `;
}
