// Server replies (IRC numerics) in words. The server stores a numeric as a
// `system` message in the network's server buffer, with meta.numeric = "311",
// meta.params = the parameters after our nick (a list: the last one keeps its
// spaces) and text = them joined by spaces (rows stored before meta.params
// existed have only the text, split on spaces here). replyLine(m)
// gives { text, level, group }: level "error" (4xx/5xx), "end" (end of a
// list), "reply" (WHOIS, LIST, NAMES …) or "info" (the rest); group names
// the block a line belongs to ("whois", "list", "names") so lines of one
// answer can be drawn together. Pure: no DOM, the text is rendered as text.

const WHOIS = new Set(["301", "307", "310", "311", "312", "313", "317", "319", "320", "330", "335", "338", "378", "379", "671", "276", "314", "369", "318"]);
const ENDS = { "318": "whois", "369": "whois", "323": "list", "366": "names" };
// errors whose parameters start with the text (no target)
const NO_TARGET = new Set(["409", "411", "412", "422", "424", "431", "436", "451", "462", "464", "465", "481", "491", "501", "502"]);
// errors with two targets (a nick and a channel)
const TWO_TARGETS = new Set(["441", "443", "478", "696"]);

export function isError(numeric) {
  return /^[45]\d\d$/.test(numeric || "");
}

function words(text) {
  return String(text || "").split(" ");
}

function params(m) {
  const p = m.meta.params;
  return Array.isArray(p) && p.length ? p.map((x) => String(x ?? "")) : words(m.text);
}

function duration(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s < 0) return `${seconds} s`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function when(unix) {
  const n = Number(unix);
  if (!Number.isFinite(n) || n <= 0) return String(unix);
  return new Date(n * 1000).toLocaleString();
}

/** One server reply in words. `m` is a message with meta.numeric (else null). */
export function replyLine(m) {
  const code = m?.meta?.numeric;
  if (!code) return null;
  const w = params(m);
  const rest = (n) => w.slice(n).join(" ");
  const line = (text, level = "reply", group = null) => ({ text: text.trim(), level, group, code });
  if (isError(code)) {
    if (NO_TARGET.has(code) || w.length < 2) return line(m.text, "error");
    if (TWO_TARGETS.has(code) && w.length > 2) return line(`${w[0]} ${w[1]}: ${rest(2)}`, "error");
    return line(`${w[0]}: ${rest(1)}`, "error");
  }
  if (ENDS[code]) {
    const what = { whois: `End of WHOIS for ${w[0]}`, list: "End of the channel list", names: `End of NAMES for ${w[0]}` }[ENDS[code]];
    return line(what, "end", ENDS[code]);
  }
  switch (code) {
    case "311":
      return line(`${w[0]} is ${w[1]}@${w[2]}${w.length > 4 ? ` (${rest(4)})` : ""}`, "reply", "whois");
    case "314":
      return line(`${w[0]} was ${w[1]}@${w[2]}${w.length > 4 ? ` (${rest(4)})` : ""}`, "reply", "whois");
    case "312":
      return line(`${w[0]} is connected to ${w[1]}${w.length > 2 ? ` (${rest(2)})` : ""}`, "reply", "whois");
    case "301":
      return line(`${w[0]} is away: ${rest(1)}`, "reply", "whois");
    case "317": {
      const signon = /^[1-9]\d*$/.test(w[2] || "") ? `, signed on ${when(w[2])}` : "";
      return line(`${w[0]} has been idle ${duration(w[1])}${signon}`, "reply", "whois");
    }
    case "319":
      return line(`${w[0]} is on ${rest(1)}`, "reply", "whois");
    case "330":
      return line(`${w[0]} is logged in as ${w[1]}`, "reply", "whois");
    case "321":
      return line("Channels (users, topic):", "reply", "list");
    case "322":
      return line(`${w[0]} (${w[1]}) ${rest(2)}`.trimEnd(), "reply", "list");
    case "353":
      return line(`Names in ${w[1]}: ${rest(2)}`, "reply", "names");
    case "305":
    case "306":
      return line(rest(0), "end", "away");
    case "324":
      return line(`${w[0]} modes: ${rest(1)}`, "end", "mode");
    case "329":
      return line(`${w[0]} was created ${when(w[1])}`, "reply", "mode");
    case "341":
      return line(`Invited ${w[0]} to ${w[1]}`, "end", "invite");
    default:
      if (WHOIS.has(code)) return line(`${w[0]} ${rest(1)}`, "reply", "whois");
      return line(m.text, "info");
  }
}

/** Whether a server-buffer `system` message without numeric reads as an error. */
export function noteIsError(m) {
  return m?.meta?.not_sent != null || /^(error:|disconnected:)|^SASL \S+: failed/.test(m?.text || "");
}

/** The seqs of the messages of a conversation that did not reach IRC: each has a
 * `system` note with meta.not_sent = its seq (meta.maybe when it may have). */
export function unsentSeqs(msgs) {
  const out = new Map();
  for (const m of msgs || []) {
    const seq = m.kind === "system" ? m.meta?.not_sent : null;
    if (Number.isInteger(seq)) out.set(seq, m.meta.maybe ? "maybe" : "no");
  }
  return out;
}
