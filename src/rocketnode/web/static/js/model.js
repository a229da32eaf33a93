// The client's picture of its rooms, kept up to date from /sync, local echoes and
// back-pagination. Views read it and listen for "change" events; nothing here touches the DOM.

import { isMessage, isRedacted, messageText } from "./events.js";
import { localpartOf } from "./ids.js";

const stateKey = (type, key = "") => `${type}\u0000${key}`;

// One timeline entry: an event from the server, or a local echo of one being sent.
// status: null (from the server), "sending", "sent" or "failed" (local echoes).
function entry(event, previous = undefined) {
  return { key: event.event_id, event, status: null, txnId: null, previous };
}

export class Room {
  constructor(id) {
    this.id = id;
    this.membership = "join";
    this.state = new Map();
    this.timeline = [];
    this.prevBatch = null;
    this.atStart = false;
    this.typing = [];
    this.readReceipts = new Map(); // user ID -> event ID of their m.read receipt
    this.heroes = [];
    this.inviter = null;
    this.lastActivity = 0;
  }

  stateContent(type, key = "") {
    return this.state.get(stateKey(type, key))?.content;
  }

  applyState(event) {
    if (typeof event.state_key !== "string") return;
    this.state.set(stateKey(event.type, event.state_key), event);
  }

  members() {
    const found = [];
    for (const event of this.state.values()) {
      if (event.type !== "m.room.member") continue;
      found.push({
        userId: event.state_key,
        membership: event.content?.membership ?? "leave",
        displayname: event.content?.displayname || null,
      });
    }
    return found.sort((a, b) => this.displayName(a.userId).localeCompare(this.displayName(b.userId)));
  }

  displayName(userId) {
    const member = this.stateContent("m.room.member", userId);
    return member?.displayname || localpartOf(userId);
  }

  name(me) {
    const named = this.stateContent("m.room.name")?.name;
    if (named) return named;
    const alias = this.stateContent("m.room.canonical_alias")?.alias;
    if (alias) return alias;
    const others = this.heroes.length ? this.heroes
      : this.members().filter((m) => m.userId !== me && m.membership !== "leave")
        .map((m) => m.userId);
    if (others.length === 0) return "Empty room";
    const names = others.slice(0, 3).map((u) => this.displayName(u));
    return others.length > 3 ? `${names.join(", ")} and ${others.length - 3} more`
      : names.join(" and ");
  }

  topic() {
    return this.stateContent("m.room.topic")?.topic ?? "";
  }

  lastMessage() {
    for (let i = this.timeline.length - 1; i >= 0; i -= 1) {
      const event = this.timeline[i].event;
      if (isMessage(event)) return event;
    }
    return null;
  }

  // Messages from others after the last event the user has read or sent.
  unreadCount(me) {
    const read = this.readReceipts.get(me);
    let count = 0;
    for (let i = this.timeline.length - 1; i >= 0; i -= 1) {
      const event = this.timeline[i].event;
      if (event.sender === me || (read && event.event_id === read)) return { count, more: false };
      if (isMessage(event) && !isRedacted(event) && messageText(event)) count += 1;
    }
    return { count, more: !this.atStart && count > 0 };
  }

  findIndex(eventId) {
    return this.timeline.findIndex((e) => e.event.event_id === eventId);
  }

  // Add an event from the server at the end (or take the place of its local echo).
  append(event) {
    if (event.type === "m.room.redaction") {
      this.redact(event);
      return;
    }
    const txnId = event.unsigned?.transaction_id;
    const echo = txnId ? this.timeline.find((e) => e.txnId === txnId) : undefined;
    if (!echo && event.event_id && this.findIndex(event.event_id) >= 0) return;
    // The state this event replaces, for describing the change (null: there was none).
    const previous = typeof event.state_key === "string"
      ? this.stateContent(event.type, event.state_key) ?? null : undefined;
    if (echo) {
      echo.event = event;
      echo.key = event.event_id;
      echo.status = "sent";
    } else {
      this.timeline.push(entry(event, previous));
    }
    this.applyState(event);
    this.lastActivity = Math.max(this.lastActivity, event.origin_server_ts ?? 0);
  }

  redact(redaction) {
    const target = redaction.redacts ?? redaction.content?.redacts;
    const found = this.timeline.find((e) => e.event.event_id === target);
    if (!found) return;
    found.event = {
      ...found.event, content: {},
      unsigned: { ...found.event.unsigned, redacted_because: redaction },
    };
  }

  // Older events from /messages (newest first), put before what is loaded.
  prepend(chunk, end) {
    const known = new Set(this.timeline.map((e) => e.event.event_id));
    const older = [];
    for (const event of chunk) {
      if (event.type === "m.room.redaction" || known.has(event.event_id)) continue;
      older.unshift(entry(event));
    }
    this.timeline.unshift(...older);
    this.prevBatch = end ?? null;
    if (!end || chunk.length === 0 || this.hasCreate()) this.atStart = true;
  }

  // Whether the loaded timeline reaches back to the room's creation.
  hasCreate() {
    return this.timeline.some((e) => e.event.type === "m.room.create");
  }

  // The timeline was cut (a gap the server would not fill in one sync): start again from
  // what the server sent, keeping the messages still on their way.
  resetTimeline(prevBatch) {
    this.timeline = this.timeline.filter((e) => e.status === "sending" || e.status === "failed");
    this.prevBatch = prevBatch ?? null;
    this.atStart = false;
  }

  addEcho(sender, txnId, content) {
    const event = {
      type: "m.room.message", sender, content, origin_server_ts: Date.now(),
      unsigned: { transaction_id: txnId },
    };
    this.timeline.push({ key: `txn:${txnId}`, event, status: "sending", txnId, previous: undefined });
    this.lastActivity = Date.now();
  }

  echo(txnId) {
    return this.timeline.find((e) => e.txnId === txnId);
  }

  // Which users have read up to each event, from their latest m.read receipt.
  readersByEvent(me) {
    const readers = new Map();
    for (const [userId, eventId] of this.readReceipts) {
      if (userId === me) continue;
      if (!readers.has(eventId)) readers.set(eventId, []);
      readers.get(eventId).push(userId);
    }
    return readers;
  }
}

export class Store extends EventTarget {
  constructor(userId) {
    super();
    this.userId = userId;
    this.rooms = new Map();
  }

  room(roomId) {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = new Room(roomId);
      this.rooms.set(roomId, room);
    }
    return room;
  }

  joinedRooms() {
    return [...this.rooms.values()].filter((r) => r.membership === "join")
      .sort((a, b) => b.lastActivity - a.lastActivity || a.id.localeCompare(b.id));
  }

  invitedRooms() {
    return [...this.rooms.values()].filter((r) => r.membership === "invite");
  }

  changed(roomIds, detail = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { rooms: new Set(roomIds), ...detail } }));
  }

  applySync(response, initial) {
    const changed = new Set();
    const sections = response.rooms ?? {};
    for (const [roomId, section] of Object.entries(sections.join ?? {})) {
      this.applyJoined(this.room(roomId), section, initial);
      changed.add(roomId);
    }
    for (const [roomId, section] of Object.entries(sections.invite ?? {})) {
      this.applyInvite(this.room(roomId), section);
      changed.add(roomId);
    }
    for (const roomId of Object.keys(sections.leave ?? {})) {
      this.rooms.delete(roomId);
      changed.add(roomId);
    }
    if (changed.size || initial) this.changed(changed, { initial });
  }

  applyJoined(room, section, initial) {
    const fresh = room.membership !== "join";
    room.membership = "join";
    room.inviter = null;
    const timeline = section.timeline ?? {};
    if (fresh || initial || timeline.limited) room.resetTimeline(timeline.prev_batch);
    for (const event of section.state?.events ?? []) room.applyState(event);
    if (section.summary?.["m.heroes"]) room.heroes = section.summary["m.heroes"];
    for (const event of timeline.events ?? []) room.append(event);
    if (room.hasCreate()) room.atStart = true;
    if (room.lastActivity === 0) {
      room.lastActivity = room.state.get(stateKey("m.room.create"))?.origin_server_ts ?? 0;
    }
    for (const event of section.ephemeral?.events ?? []) this.applyEphemeral(room, event);
  }

  applyEphemeral(room, event) {
    if (event.type === "m.typing") {
      room.typing = event.content?.user_ids ?? [];
    } else if (event.type === "m.receipt") {
      for (const [eventId, byType] of Object.entries(event.content ?? {})) {
        for (const userId of Object.keys(byType["m.read"] ?? {})) {
          room.readReceipts.set(userId, eventId);
        }
      }
    }
  }

  applyInvite(room, section) {
    room.membership = "invite";
    room.state.clear();
    for (const event of section.invite_state?.events ?? []) room.applyState(event);
    const own = room.stateContent("m.room.member", this.userId);
    room.inviter = own ? room.state.get(stateKey("m.room.member", this.userId)).sender : null;
    room.lastActivity = Date.now();
  }
}
