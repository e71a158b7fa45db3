// Slash commands of the composer. Each returns a promise; a thrown Error's
// message is shown under the composer.
import { convTitle, isIrc } from "./format.js";
import { ircError } from "./ui/networks.js";

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

// In an IRC channel or query: the network's commands, run by the server
// (POST /api/networks/{id}/command); plain text and /me go through the normal send.
export const IRC_COMMANDS = {
  me: { args: "<action>", help: "Send an action: /me waves" },
  join: { args: "<#channel> [key]", help: "Join a channel" },
  part: { args: "[#channel] [reason]", help: "Leave this channel (or the one named)" },
  msg: { args: "<nick|#channel> <text>", help: "Send a message" },
  query: { args: "<nick>", help: "Open a private conversation" },
  notice: { args: "<target> <text>", help: "Send a notice" },
  nick: { args: "<nick>", help: "Change your nick" },
  topic: { args: "[#channel] [text]", help: "Show or set the topic" },
  whois: { args: "<nick>", help: "Who is that" },
  mode: { args: "<target> <modes>", help: "Set or show modes" },
  kick: { args: "<nick> [reason]", help: "Kick someone from this channel" },
  invite: { args: "<nick> [#channel]", help: "Invite someone" },
  away: { args: "[message]", help: "Set (or clear) your away message" },
  names: { args: "[#channel]", help: "List who is in a channel" },
  list: { args: "[pattern]", help: "List channels" },
  quote: { args: "<raw line>", help: "Send a raw IRC line" },
  close: { args: "[#channel|nick]", help: "Close this conversation (parting a channel)" },
  connect: { args: "", help: "Connect this network" },
  disconnect: { args: "", help: "Disconnect this network" },
  search: { args: "<words>", help: "Search your conversations" },
  help: { args: "", help: "Show this list" },
};

export function commandNames(conv) {
  return Object.keys(isIrc(conv) ? IRC_COMMANDS : COMMANDS).map((c) => "/" + c);
}

async function runIrc(chat, conv, text, ui) {
  const m = text.match(/^\/(\S+)\s*([\s\S]*)$/);
  const name = m[1].toLowerCase();
  const rest = m[2].trim();
  if (name === "me") {
    if (!rest) throw new Error("Usage: /me <action> (what you do)");
    chat.send(conv, rest, "action");
    return;
  }
  if (name === "search") {
    if (!rest) throw new Error("Usage: /search <words>");
    ui.search(rest);
    return;
  }
  if (name === "help") {
    const lines = Object.entries(IRC_COMMANDS).map(([k, v]) => `/${k} ${v.args} — ${v.help}`);
    chat.notice(conv.id, ["IRC commands:", ...lines, "Start a message with // to send a leading slash."].join("\n"));
    return;
  }
  if (name === "join" && rest) chat.openWhenJoined(conv.network, rest.split(/[\s,]+/)[0]);
  if (name === "names") {
    // the member list Hubbub keeps (the server's NAMES reply refreshes it)
    const wanted = (rest.split(/\s+/)[0] || conv.name).toLowerCase();
    const ch = [...chat.convs.values()].find((x) => x.network === conv.network && x.kind === "channel" && x.name.toLowerCase() === wanted);
    if (ch?.ircMembers) {
      const names = ch.ircMembers.map((mb) => (mb.prefixes || "").slice(0, 1) + mb.nick);
      chat.notice(conv.id, `Names in ${ch.name} (${names.length}):\n${names.join(" ")}`);
    }
  }
  const mirrored = { whois: "WHOIS", list: "Channel list", mode: "Modes", away: "Away", invite: "Invite" };
  if (mirrored[name] && (name !== "mode" || !/[+-]/.test(rest))) {
    chat.expectReplies(conv, `${mirrored[name]}${rest && name !== "away" ? " " + rest : ""}:`);
  }
  let done;
  try {
    done = await chat.ircCommand(conv, "/" + name + (rest ? " " + rest : ""));
  } catch (err) {
    chat.expectReplies(null);
    throw new Error(ircError(err));
  }
  if (done?.done === "query" && done.conversation) chat.openWhenKnown(done.conversation);
  if (done?.done === "close" && done.conversation) chat.removeConv(done.conversation);
  if (done?.done === "connect" || done?.done === "disconnect") chat.loadNetworks();
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
  if (isIrc(conv)) return runIrc(chat, conv, text, ui);
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
