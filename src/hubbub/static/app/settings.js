// Preferences of this browser: theme, notifications, highlight words.
const KEY = "hubbub:settings";
const DEFAULTS = { theme: "system", notify: "mentions", highlights: [], notifyAsked: false, compact: false };

export function loadSettings() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) || "{}") };
  } catch {
    return { ...DEFAULTS };
  }
}

export function saveSettings(s) {
  localStorage.setItem(KEY, JSON.stringify(s));
}

const dark = matchMedia("(prefers-color-scheme: dark)");

export function applyTheme(theme) {
  const resolved = theme === "system" ? (dark.matches ? "dark" : "light") : theme;
  document.documentElement.dataset.theme = resolved;
  const meta = document.querySelectorAll('meta[name="theme-color"]');
  for (const m of meta) m.setAttribute("content", resolved === "dark" ? "#17181c" : "#f7f7f9");
}

export function onSystemTheme(fn) {
  dark.addEventListener("change", fn);
}
