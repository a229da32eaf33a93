// Matrix identifiers as the client needs them: whose server, which localpart, what to join.

export function serverOf(id) {
  const colon = id.indexOf(":");
  return colon < 0 ? "" : id.slice(colon + 1);
}

export function localpartOf(userId) {
  const colon = userId.indexOf(":");
  return userId.slice(1, colon < 0 ? undefined : colon);
}

const USER_ID = /^@[^:\s]+:[^\s]+$/;
const ALIAS = /^#[^:\s]+:[^\s]+$/;
const ROOM_ID = /^![^\s:]+(:[^\s]+)?$/;
const SERVER = /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

export function isUserId(text) {
  return USER_ID.test(text);
}

export function isServerName(text) {
  return SERVER.test(text);
}

// Whether joining `target` needs the user to name a server to join through: a room ID
// without a server part (room version 12 and later) cannot be found otherwise.
export function needsVia(target) {
  return target.startsWith("!") && !target.includes(":");
}

// What to send to POST /join/{roomIdOrAlias}: the target and the servers to try, or an error
// to show next to the field.
export function joinRequest(rawTarget, rawVia) {
  const target = rawTarget.trim();
  const via = rawVia.trim();
  if (!ALIAS.test(target) && !ROOM_ID.test(target)) {
    return { error: "Enter a room alias like #room:example.org or a room ID like !abc:example.org" };
  }
  if (via && !isServerName(via)) {
    return { error: `"${via}" is not a server name (example.org or 127.0.0.1:8448)` };
  }
  if (needsVia(target) && !via) {
    return { error: "This room ID has no server part: enter a server to join through." };
  }
  const servers = [];
  if (via) servers.push(via);
  if (target.startsWith("!") && serverOf(target) && !servers.includes(serverOf(target))) {
    servers.push(serverOf(target));
  }
  return { target, servers };
}
