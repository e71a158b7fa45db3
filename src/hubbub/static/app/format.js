// Text to vnodes: links, mentions and highlight words. User text only ever
// becomes text nodes (Preact escapes it); nothing here builds HTML strings.
import { html } from "htm/preact";
import { parseMirc, segmentStyle } from "./mirc.js";

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"»”’]+$/;

export function nickClass(name) {
  let h = 0x811c9dc5; // FNV-1a
  for (const ch of name.toLowerCase()) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return "nick-c" + (h % 16);
}

export function initial(name) {
  return (name || "?").replace(/^[#@]/, "").slice(0, 1).toUpperCase() || "?";
}

export function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A matcher for the user's name and highlight words, as whole words. */
export function highlighter(name, words = []) {
  const terms = [name, ...words].map((w) => (w || "").trim()).filter((w) => w.length > 0);
  if (!terms.length) return null;
  return new RegExp(`(^|[^\\p{L}\\p{N}_])(${terms.map(escapeRegExp).join("|")})(?![\\p{L}\\p{N}_])`, "giu");
}

export function mentions(text, matcher) {
  if (!matcher) return false;
  matcher.lastIndex = 0;
  const found = matcher.test(text);
  matcher.lastIndex = 0;
  return found;
}

function splitLinks(text) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let href = m[0];
    const trail = href.match(TRAILING);
    // keep a closing bracket that has its opening one inside the URL
    if (trail) {
      let cut = trail[0];
      if (cut.startsWith(")") && href.includes("(")) cut = cut.slice(1);
      href = href.slice(0, href.length - cut.length);
    }
    if (!href) continue;
    if (m.index > last) parts.push({ text: text.slice(last, m.index) });
    parts.push({ link: href });
    last = m.index + href.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

function splitHighlights(text, matcher, key) {
  if (!matcher) return [text];
  const out = [];
  let last = 0;
  matcher.lastIndex = 0;
  for (const m of text.matchAll(matcher)) {
    const start = m.index + m[1].length;
    if (start > last) out.push(text.slice(last, start));
    out.push(html`<mark class="mention" key=${key + ":" + start}>${m[2]}</mark>`);
    last = start + m[2].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Only the highlights, no links (for text inside a button: search results). */
export function highlightText(text, matcher) {
  return splitHighlights(text, matcher, "h");
}

/** vnodes for a message text: clickable links (rel=noopener), highlighted mentions. */
export function richText(text, matcher) {
  const out = [];
  splitLinks(text).forEach((part, i) => {
    if (part.link) {
      const href = /^www\./i.test(part.link) ? "https://" + part.link : part.link;
      out.push(
        html`<a key=${"l" + i} href=${href} target="_blank" rel="noopener noreferrer nofollow" class="link">${part.link}</a>`,
      );
    } else {
      out.push(...splitHighlights(part.text, matcher, "h" + i));
    }
  });
  return out;
}

/** An IRC text: mIRC formatting as styled spans (fixed palette), each holding richText. */
export function ircText(text, matcher) {
  return parseMirc(text).map((seg, i) => {
    const { cls, style } = segmentStyle(seg);
    const inner = richText(seg.text, matcher);
    return cls || Object.keys(style).length ? html`<span key=${"m" + i} class=${cls || undefined} style=${style}>${inner}</span>` : inner;
  }).flat();
}

export const isIrc = (c) => !!c && (c.kind === "channel" || c.kind === "query");

/** Message or topic text for a conversation: mIRC formatting for IRC ones only. */
export function convText(c, text, matcher) {
  return isIrc(c) ? ircText(text, matcher) : richText(text, matcher);
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const yearFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

export const clock = (ts) => timeFmt.format(new Date(ts));
export const fullTime = (ts) => fullFmt.format(new Date(ts));

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (dayKey(d) === dayKey(today)) return "Today";
  if (dayKey(d) === dayKey(yesterday)) return "Yesterday";
  return d.getFullYear() === today.getFullYear() ? dayFmt.format(d) : yearFmt.format(d);
}

export function ago(ts) {
  const s = Math.round((Date.now() - ts) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return yearFmt.format(new Date(ts));
}

export function convTitle(c) {
  if (!c) return "";
  if (c.kind === "query") return c.name === "*" ? "server messages" : c.peer || c.name;
  if (c.kind === "channel") return c.name; // IRC names carry their # (or &, +, !)
  if (c.kind === "dm") return c.peer || c.name;
  return "#" + c.name;
}
