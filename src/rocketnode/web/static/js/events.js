// What an event means to a reader: message or state change, and the sentence for a state change.

export function isRedacted(event) {
  return Boolean(event.unsigned?.redacted_because) ||
    (event.type === "m.room.message" && !("body" in (event.content ?? {})));
}

export function isMessage(event) {
  return event.type === "m.room.message";
}

export function messageText(event) {
  const body = event.content?.body;
  return typeof body === "string" ? body : "";
}

// The sentence shown for a state event, or null for state that is not worth a line.
// `name(userId)` gives the display name to use for a user.
export function describeState(event, name, previous) {
  const content = event.content ?? {};
  const who = name(event.sender);
  switch (event.type) {
    case "m.room.create":
      return `${who} created the room`;
    case "m.room.member":
      return describeMembership(event, name, previous);
    case "m.room.name":
      return content.name ? `${who} named the room “${content.name}”`
        : `${who} removed the room name`;
    case "m.room.topic":
      return content.topic ? `${who} set the topic to “${content.topic}”`
        : `${who} removed the topic`;
    case "m.room.canonical_alias":
      return content.alias ? `${who} set the room address to ${content.alias}` : null;
    case "m.room.join_rules":
      return content.join_rule === "public" ? `${who} made the room public`
        : `${who} made the room invite only`;
    case "m.room.history_visibility":
      return null;
    case "m.room.power_levels":
      return previous ? `${who} changed the power levels` : null;
    case "m.room.guest_access":
      return null;
    default:
      return null;
  }
}

function describeMembership(event, name, previous) {
  const content = event.content ?? {};
  const target = event.state_key ?? "";
  const who = name(event.sender);
  const whom = content.displayname || name(target);
  const before = previous?.membership ?? "leave";
  const reason = content.reason ? `: ${content.reason}` : "";
  switch (content.membership) {
    case "join":
      if (before === "join") {
        if (previous?.displayname !== content.displayname) {
          return content.displayname
            ? `${previous?.displayname || target} is now called ${content.displayname}`
            : `${previous?.displayname || target} removed their display name`;
        }
        return null;
      }
      return `${whom} joined`;
    case "invite":
      return `${who} invited ${whom}`;
    case "leave":
      if (event.sender !== target) {
        return before === "ban" ? `${who} unbanned ${name(target)}`
          : `${who} removed ${name(target)}${reason}`;
      }
      if (before === "invite") return `${name(target)} declined the invitation`;
      return `${name(target)} left`;
    case "ban":
      return `${who} banned ${name(target)}${reason}`;
    case "knock":
      return `${name(target)} asked to join`;
    default:
      return null;
  }
}
