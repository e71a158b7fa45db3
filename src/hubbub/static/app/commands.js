// Slash commands of the composer. Each returns a promise; a thrown Error's
// message is shown under the composer.
import { convTitle } from "./format.js";

export const COMMANDS = {
  me: { args: "<action>", help: "Send an action: /me waves" },
  join: { args: "<#room>", help: "Join a room (it is created when it does not exist)" },
  part: { args: "[#room]", help: "Leave this room (or the one named)" },
  leave: { args: "[#room]", help: "Same as /part" },
  topic: { args: "[text]", help: "Show or set this room's topic" },
  msg: { args: "<name> <text>", help: "Send a direct message" },
  query: { args: "<name>", help: "Open a direct message with someone" },
  invite: { args: "<name>", help: "Invite someone into this room" },
  notice: { args: "<text>", help: "Send a notice" },
  search: { args: "<words>", help: "Search your conversations" },
  help: { args: "", help: "Show this list" },
};

export function commandNames() {
  return Object.keys(COMMANDS).map((c) => "/" + c);
}

/**
 * Run the composer's text. Returns true when it was handled (sent or run).
 * `ui` gives the few view actions a command needs (search).
 */
export async function runInput(chat, conv, text, ui) {
  if (!text.startsWith("/") || text.startsWith("//")) {
    const plain = text.startsWith("//") ? text.slice(1) : text;
    if (!conv) throw new Error("Open a conversation first.");
    chat.send(conv, plain, "text");
    return;
  }
  const m = text.match(/^\/(\S+)\s*([\s\S]*)$/);
  const name = m[1].toLowerCase();
  const rest = m[2].trim();
  const need = (what) => {
    if (!rest) throw new Error(`Usage: /${name} ${COMMANDS[name].args} (${what})`);
  };
  const room = () => {
    if (!conv) throw new Error("Open a conversation first.");
    return conv;
  };
  switch (name) {
    case "me":
      need("what you do");
      chat.send(room(), rest, "action");
      return;
    case "notice":
      need("the text");
      chat.send(room(), rest, "notice");
      return;
    case "join":
      need("a room name");
      await chat.joinRoom(rest.split(/\s+/)[0]);
      return;
    case "part":
    case "leave": {
      let target = conv;
      if (rest) {
        const wanted = rest.split(/\s+/)[0].replace(/^#/, "").toLowerCase();
        target = [...chat.convs.values()].find((c) => c.kind === "room" && c.name.toLowerCase() === wanted);
        if (!target) throw new Error(`You are not in #${wanted}.`);
      }
      if (!target) throw new Error("Open a room first.");
      if (target.kind !== "room") throw new Error("Only rooms can be left; a direct message stays.");
      await chat.leave(target);
      return;
    }
    case "topic": {
      const c = room();
      if (!rest) {
        chat.notice(c.id, c.topic ? `Topic of ${convTitle(c)}: ${c.topic}` : `${convTitle(c)} has no topic.`);
        return;
      }
      if (c.kind !== "room") throw new Error("Only rooms have a topic.");
      await chat.setTopic(c, rest);
      return;
    }
    case "msg": {
      const mm = rest.match(/^(\S+)\s+([\s\S]+)$/);
      if (!mm) throw new Error("Usage: /msg <name> <text>");
      const view = await chat.openDm(mm[1]);
      chat.send(chat.convs.get(view.id), mm[2], "text");
      return;
    }
    case "query":
      need("a name");
      await chat.openDm(rest.split(/\s+/)[0]);
      return;
    case "invite":
      need("a name");
      if (room().kind !== "room") throw new Error("Invite people into a room.");
      await chat.invite(conv, rest.split(/\s+/)[0]);
      chat.notice(conv.id, `Invited ${rest.split(/\s+/)[0]} to ${convTitle(conv)}.`);
      return;
    case "search":
      need("words to look for");
      ui.search(rest);
      return;
    case "help": {
      const lines = Object.entries(COMMANDS).map(([k, v]) => `/${k} ${v.args} — ${v.help}`);
      chat.notice(conv?.id, ["Commands:", ...lines, "Start a message with // to send a leading slash."].join("\n"));
      return;
    }
    default:
      throw new Error(`Unknown command /${name}. Type /help for the list.`);
  }
}
