// mIRC formatting codes to styled segments: a pure parser, no DOM, no HTML.
// parseMirc(text) -> [{ text, b, i, u, s, m, fg, bg, rev, hexFg, hexBg }]; the
// renderer (format.js ircText) turns each into a <span> whose text is a text node
// and whose colour comes from PALETTE (or a checked #rrggbb), never from the input.

export const PALETTE = [
  "#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
  "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2",
  "#470000", "#472100", "#474700", "#324700", "#004700", "#00472c", "#004747", "#002747", "#000047", "#2e0047", "#470047", "#47002a",
  "#740000", "#743a00", "#747400", "#517400", "#007400", "#007449", "#007474", "#004074", "#000074", "#4b0074", "#740074", "#740045",
  "#b50000", "#b56300", "#b5b500", "#7db500", "#00b500", "#00b571", "#00b5b5", "#0063b5", "#0000b5", "#7500b5", "#b500b5", "#b5006b",
  "#ff0000", "#ff8c00", "#ffff00", "#b2ff00", "#00ff00", "#00ffa0", "#00ffff", "#008cff", "#0000ff", "#a500ff", "#ff00ff", "#ff0098",
  "#ff5959", "#ffb459", "#ffff71", "#cfff60", "#6fff6f", "#65ffc9", "#6dffff", "#59b4ff", "#5959ff", "#c459ff", "#ff66ff", "#ff59bc",
  "#ff9c9c", "#ffd39c", "#ffff9c", "#e2ff9c", "#9cff9c", "#9cffdb", "#9cffff", "#9cd3ff", "#9c9cff", "#dc9cff", "#ff9cff", "#ff94d3",
  "#000000", "#131313", "#282828", "#363636", "#4d4d4d", "#656565", "#818181", "#9f9f9f", "#bcbcbc", "#e2e2e2", "#ffffff",
];

const CODES = /[\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f]/;
// other C0 controls (but tab) are dropped: they have no place in a rendered line
const OTHER_CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** Whether the text carries any formatting code. */
export function hasMirc(text) {
  return CODES.test(text || "");
}

/** The text without any formatting code. */
export function stripMirc(text) {
  return parseMirc(text).map((s) => s.text).join("");
}

function fresh() {
  return { b: false, i: false, u: false, s: false, m: false, rev: false, fg: null, bg: null };
}

/** Segments of text with the formatting in force for each. */
export function parseMirc(text) {
  const out = [];
  let st = fresh();
  let buf = "";
  const flush = () => {
    if (buf) out.push({ ...st, text: buf.replace(OTHER_CONTROLS, "") });
    buf = "";
  };
  const s = String(text || "");
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    const toggle = { "\x02": "b", "\x1d": "i", "\x1f": "u", "\x1e": "s", "\x11": "m", "\x16": "rev" }[ch];
    if (toggle) {
      flush();
      st = { ...st, [toggle]: !st[toggle] };
      i++;
    } else if (ch === "\x0f") {
      flush();
      st = fresh();
      i++;
    } else if (ch === "\x03") {
      flush();
      i++;
      const fg = s.slice(i).match(/^(\d{1,2})(?:,(\d{1,2}))?/);
      if (!fg) {
        st = { ...st, fg: null, bg: null };
      } else {
        i += fg[0].length;
        st = { ...st, fg: colour(fg[1]) };
        if (fg[2] !== undefined) st.bg = colour(fg[2]);
      }
    } else if (ch === "\x04") {
      flush();
      i++;
      const hx = s.slice(i).match(/^([0-9a-fA-F]{6})(?:,([0-9a-fA-F]{6}))?/);
      if (!hx) {
        st = { ...st, fg: null, bg: null };
      } else {
        i += hx[0].length;
        st = { ...st, fg: "#" + hx[1].toLowerCase() };
        if (hx[2] !== undefined) st.bg = "#" + hx[2].toLowerCase();
      }
    } else {
      buf += ch;
      i++;
    }
  }
  flush();
  return out.filter((seg) => seg.text);
}

function colour(digits) {
  const n = parseInt(digits, 10);
  return n >= 0 && n < PALETTE.length ? PALETTE[n] : null; // 99 (and beyond): the default
}

/** The classes and inline style (fixed palette values only) of a segment. */
export function segmentStyle(seg) {
  const cls = [];
  if (seg.b) cls.push("mirc-b");
  if (seg.i) cls.push("mirc-i");
  if (seg.u) cls.push("mirc-u");
  if (seg.s) cls.push("mirc-s");
  if (seg.m) cls.push("mirc-m");
  let fg = seg.fg;
  let bg = seg.bg;
  if (seg.rev) {
    if (fg || bg) [fg, bg] = [bg, fg];
    else cls.push("mirc-rev");
  }
  const style = {};
  if (fg && /^#[0-9a-f]{6}$/.test(fg)) style.color = fg;
  if (bg && /^#[0-9a-f]{6}$/.test(bg)) style.backgroundColor = bg;
  return { cls: cls.join(" "), style };
}
