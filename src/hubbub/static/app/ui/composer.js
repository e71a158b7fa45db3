// The composer: Enter sends, Shift+Enter a new line, Up recalls what you
// sent, Tab completes names and commands, slash commands with clear errors.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { commandNames, runInput } from "../commands.js";
import { convTitle } from "../format.js";
import { Icon } from "./icons.js";

const sent = []; // what this page sent, newest last (for Up)
const drafts = new Map();

export function Composer({ chat, c, ui, inputRef }) {
  const [text, setText] = useState(() => drafts.get(c?.id) || "");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const recall = useRef({ index: -1, saved: "" });
  const completion = useRef(null);
  const ref = inputRef || useRef();
  const maxLen = 4000;

  useEffect(() => {
    setText(drafts.get(c?.id) || "");
    setError(null);
    recall.current = { index: -1, saved: "" };
  }, [c?.id]);

  useEffect(() => resize(), [text]);

  function resize() {
    const el = ref.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = Math.min(el.scrollHeight, 200) + "px";
  }

  function update(value) {
    setText(value);
    drafts.set(c?.id, value);
    if (error) setError(null);
    if (value && !value.startsWith("/") && c) chat.typing(c);
  }

  async function submit() {
    const value = text.replace(/\s+$/, "");
    if (!value.trim()) return;
    if (value.length > maxLen) {
      setError(`That message is ${value.length} characters long; the limit is ${maxLen}.`);
      return;
    }
    sent.push(value);
    if (sent.length > 100) sent.shift();
    recall.current = { index: -1, saved: "" };
    const isCommand = value.startsWith("/") && !value.startsWith("//");
    if (!isCommand) update("");
    setBusy(isCommand);
    try {
      await runInput(chat, c, value, ui);
      if (isCommand) update("");
    } catch (err) {
      setError(err.message || String(err));
    } finally {
      setBusy(false);
      ref.current?.focus();
    }
  }

  function complete(el) {
    const pos = el.selectionStart;
    let st = completion.current;
    if (!st || st.value !== el.value || st.pos !== pos) {
      const before = el.value.slice(0, pos);
      const word = before.match(/(\S*)$/)[1];
      if (!word) return false;
      const start = pos - word.length;
      const isCmd = start === 0 && word.startsWith("/");
      const pool = isCmd ? commandNames(c) : chat.names(c).concat(c?.kind === "room" ? [] : []);
      const bare = word.replace(/^@/, "").toLowerCase();
      const found = pool
        .filter((n) => (isCmd ? n.startsWith(word.toLowerCase()) : n.toLowerCase().startsWith(bare)))
        .sort((a, b) => a.localeCompare(b));
      if (!found.length) return false;
      st = { start, word, found, i: -1, isCmd, at: word.startsWith("@") };
    }
    st.i = (st.i + 1) % st.found.length;
    const pick = st.found[st.i];
    const suffix = st.isCmd ? " " : st.start === 0 ? ": " : " ";
    const insert = (st.at ? "@" : "") + pick + suffix;
    const value = el.value.slice(0, st.start) + insert + el.value.slice(el.selectionStart);
    const newPos = st.start + insert.length;
    update(value);
    requestAnimationFrame(() => {
      el.setSelectionRange(newPos, newPos);
    });
    completion.current = { ...st, value, pos: newPos };
    return true;
  }

  function onKeyDown(e) {
    const el = e.currentTarget;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
      return;
    }
    if (e.key === "Tab" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      if (complete(el)) e.preventDefault();
      return;
    }
    completion.current = null;
    if (e.key === "ArrowUp" && !e.altKey && !e.shiftKey && sent.length) {
      const onFirstLine = !el.value.slice(0, el.selectionStart).includes("\n");
      const r = recall.current;
      if (onFirstLine && (el.value === "" || r.index >= 0)) {
        e.preventDefault();
        if (r.index < 0) {
          r.saved = el.value;
          r.index = sent.length;
        }
        r.index = Math.max(0, r.index - 1);
        update(sent[r.index]);
      }
      return;
    }
    if (e.key === "ArrowDown" && !e.altKey && !e.shiftKey && recall.current.index >= 0) {
      const r = recall.current;
      const onLastLine = !el.value.slice(el.selectionEnd).includes("\n");
      if (!onLastLine) return;
      e.preventDefault();
      r.index += 1;
      if (r.index >= sent.length) {
        update(r.saved);
        r.index = -1;
      } else update(sent[r.index]);
      return;
    }
    if (e.key === "Escape" && error) {
      setError(null);
    }
  }

  const typing = c ? [...c.typing.keys()] : [];
  const typingText =
    typing.length === 0 ? "" : typing.length === 1 ? `${typing[0]} is typing…` : typing.length === 2 ? `${typing[0]} and ${typing[1]} are typing…` : "Several people are typing…";
  const placeholder = c ? `Message ${convTitle(c)}` : "Type /join #room, or pick a conversation";
  return html`<div class="composer-wrap">
    <div class="typing" aria-live="polite">${typingText && html`<span class="typing-dots" aria-hidden="true"><i></i><i></i><i></i></span>`}${typingText}</div>
    ${error && html`<p class="composer-error" role="alert" id="composer-error">${error}</p>`}
    <form class="composer" onSubmit=${(e) => { e.preventDefault(); submit(); }}>
      <textarea ref=${ref} id="composer" rows="1" value=${text} placeholder=${placeholder}
        aria-label=${placeholder} aria-describedby=${error ? "composer-error" : undefined}
        aria-invalid=${error ? "true" : undefined}
        enterkeyhint="send" autocomplete="off" spellcheck="true"
        onInput=${(e) => update(e.currentTarget.value)} onKeyDown=${onKeyDown}></textarea>
      <button class="send-btn" type="submit" aria-label="Send" disabled=${!text.trim()}><${Icon} name="send" size=${20} /></button>
    </form>
  </div>`;
}
