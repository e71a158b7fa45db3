// The REST API (docs/api.md): JSON in, JSON out, errors as ApiError with the
// server's stable code. URLs are relative to the page's <base href>, so the
// client works under a base path such as /chat/.

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = extra.field ?? null;
    this.retryAfter = extra.retry_after ?? null;
  }
}

export function url(path) {
  return new URL(path, document.baseURI).toString();
}

export function wsUrl() {
  const u = new URL("api/ws", document.baseURI);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

export async function api(method, path, body, { signal } = {}) {
  let res;
  try {
    res = await fetch(url("api/" + path), {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection.");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const retry = e.retry_after ?? (Number(res.headers.get("Retry-After")) || null);
    throw new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText, {
      field: e.field,
      retry_after: retry,
    });
  }
  return data;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body = {}) => api("PUT", path, body);
export const patch = (path, body = {}) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

/** Human wording for a wait of `seconds`. */
export function waitWords(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}
