// The open room's timeline: messages, state changes as compact lines, local echoes with their
// sending state, read receipt markers, the typing line, and older history loaded on scroll.

import { avatar, byId, dayLabel, formatFull, formatTime, h, setChildren } from "../dom.js";
import { describeState, isRedacted, messageText } from "../events.js";
import { serverOf } from "../ids.js";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const PAGINATE_MARGIN_PX = 150;
const BOTTOM_SLACK_PX = 40;

export class Timeline {
  // onRetry(entry): send a failed echo again; onRead(room): the newest events are on screen.
  constructor(api, store, { onRetry, onRead }) {
    this.api = api;
    this.store = store;
    this.onRetry = onRetry;
    this.onRead = onRead;
    this.room = null;
    this.loading = false;
    this.historyError = false;
    this.scroller = byId("timeline");
    this.list = byId("events");
    this.history = byId("history-status");
    this.jump = byId("jump-button");
    this.typing = byId("typing");
    this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    this.jump.addEventListener("click", () => {
      this.scrollToBottom();
      byId("composer-input").focus();
    });
    document.addEventListener("visibilitychange", () => this.maybeRead());
  }

  show(room) {
    this.room = room;
    this.historyError = false;
    this.render({ toBottom: true });
  }

  onScreen() {
    return this.scroller.clientHeight > 0;
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jump.hidden = true;
    this.maybeRead();
  }

  // Rebuild the list, keeping the reader's place: at the bottom if they were there, else with
  // the first visible event where it was.
  render({ toBottom = false } = {}) {
    const room = this.room;
    if (!room) return;
    const stick = toBottom || this.atBottom();
    const anchor = stick ? null : this.visibleAnchor();
    const focusKey = document.activeElement?.dataset?.focusKey;
    setChildren(this.list, this.items(room));
    this.renderHistoryStatus();
    this.renderTyping();
    if (stick) {
      this.scroller.scrollTop = this.scroller.scrollHeight;
    } else if (anchor) {
      const again = this.list.querySelector(`[data-key="${CSS.escape(anchor.key)}"]`);
      if (again) this.scroller.scrollTop = again.offsetTop - anchor.offset;
    }
    if (focusKey) {
      [...this.list.querySelectorAll("button")].find((b) => b.dataset.focusKey === focusKey)
        ?.focus();
    }
    this.jump.hidden = this.atBottom();
    this.maybeRead();
    this.maybeFill();
  }

  visibleAnchor() {
    for (const item of this.list.children) {
      if (item.offsetTop + item.offsetHeight > this.scroller.scrollTop && item.dataset.key) {
        return { key: item.dataset.key, offset: item.offsetTop - this.scroller.scrollTop };
      }
    }
    return null;
  }

  items(room) {
    const me = this.store.userId;
    const name = (userId) => room.displayName(userId);
    const readers = room.readersByEvent(me);
    const seenState = new Map();
    const items = [];
    let previous = null; // the previous rendered entry
    let lastItem = null;
    let creation = null; // the collapsed block of the room's set-up, while it lasts
    for (const entry of room.timeline) {
      const event = entry.event;
      const ts = event.origin_server_ts ?? Date.now();
      let item = null;
      if (event.type === "m.room.message") {
        if (!previous || dayLabel(previous.event.origin_server_ts) !== dayLabel(ts)) {
          items.push(h("li", { class: "day", role: "separator" }, h("span", {}, dayLabel(ts))));
          previous = null;
        }
        const continues = previous?.event.type === "m.room.message" &&
          previous.event.sender === event.sender &&
          ts - previous.event.origin_server_ts < GROUP_WINDOW_MS;
        item = this.message(room, entry, continues, me);
      } else if (typeof event.state_key === "string") {
        const stateId = `${event.type}\u0000${event.state_key}`;
        const before = entry.previous !== undefined ? entry.previous : seenState.get(stateId);
        seenState.set(stateId, event.content);
        const text = describeState(event, name, before);
        if (event.type === "m.room.create") {
          creation = this.creation(entry, name(event.sender));
          item = creation.item;
        } else if (creation && partOfSetUp(event, creation.sender)) {
          if (text) creation.add(text);
        } else if (text) {
          creation = null;
          item = h("li", { class: "event state", dataset: { key: entry.key, eventId: event.event_id } },
            h("span", { class: "state-text" }, text),
            h("time", { datetime: new Date(ts).toISOString(), title: formatFull(ts) }, formatTime(ts)));
        }
      }
      if (event.type === "m.room.message") creation = null;
      if (item) {
        items.push(item);
        lastItem = item;
        previous = entry;
      }
      const readHere = event.event_id ? readers.get(event.event_id) : undefined;
      if (readHere && lastItem) this.addReceipts(lastItem, room, readHere);
    }
    return items;
  }

  // The room's creation and its creator's first state events, as one line that opens to
  // show each step.
  creation(entry, creator) {
    const ts = entry.event.origin_server_ts;
    const summary = h("span", { class: "state-text" }, `${creator} created the room`);
    const steps = h("ul", { class: "creation-steps" });
    const details = h("details", {},
      h("summary", {}, summary, h("time", {
        datetime: new Date(ts).toISOString(), title: formatFull(ts),
      }, formatTime(ts))),
      steps);
    const item = h("li", {
      class: "event state creation", dataset: { key: entry.key, eventId: entry.event.event_id },
    }, details);
    return {
      item,
      sender: entry.event.sender,
      add(text) {
        summary.textContent = `${creator} created and configured the room`;
        steps.append(h("li", {}, text));
      },
    };
  }

  message(room, entry, continues, me) {
    const event = entry.event;
    const ts = event.origin_server_ts;
    const sender = event.sender;
    const redacted = isRedacted(event);
    const emote = event.content?.msgtype === "m.emote";
    const classes = ["event", "message"];
    if (continues) classes.push("continues");
    if (sender === me) classes.push("own");
    if (redacted) classes.push("redacted");
    if (event.content?.msgtype === "m.notice") classes.push("notice");
    const time = h("time", { datetime: new Date(ts).toISOString(), title: formatFull(ts) },
      formatTime(ts));
    const body = redacted
      ? h("p", { class: "body" }, "Message deleted")
      : h("p", { class: "body" }, emote ? `* ${room.displayName(sender)} ${messageText(event)}`
        : messageText(event));
    return h("li", {
      class: classes.join(" "),
      dataset: { key: entry.key, eventId: event.event_id, sender, status: entry.status },
    },
    continues ? h("span", { class: "gutter-time" }, time) : avatar(sender, room.displayName(sender)),
    h("div", { class: "message-main" },
      continues ? null : h("p", { class: "meta" },
        h("span", { class: "sender" }, room.displayName(sender)),
        h("span", { class: "server", title: `${sender}` }, serverOf(sender)),
        time),
      body,
      h("div", { class: "message-foot" }, redacted ? null : this.status(entry))));
  }

  status(entry) {
    switch (entry.status) {
      case "sending":
        return h("p", { class: "send-status sending" }, "Sending…");
      case "sent":
        return h("p", { class: "send-status sent" }, "Sent");
      case "failed":
        return h("p", { class: "send-status failed" }, "Not sent. ",
          h("button", {
            type: "button", class: "link", dataset: { focusKey: `retry:${entry.key}` },
            onclick: () => this.onRetry(entry),
          }, "Retry"));
      default:
        return null;
    }
  }

  addReceipts(item, room, userIds) {
    const host = item.querySelector(".message-foot") ?? item.querySelector("summary") ?? item;
    let row = host.querySelector(".receipts");
    if (!row) {
      row = h("p", { class: "receipts" });
      host.append(row);
    }
    for (const userId of userIds) {
      const label = `Read by ${room.displayName(userId)} (${userId})`;
      row.append(h("span", { class: "receipt", title: label, dataset: { userId } },
        avatar(userId, room.displayName(userId), "tiny"),
        h("span", { class: "visually-hidden" }, label)));
    }
  }

  renderHistoryStatus() {
    const room = this.room;
    if (this.loading) {
      setChildren(this.history, "Loading older messages…");
    } else if (this.historyError) {
      setChildren(this.history, "Older messages could not be loaded. ",
        h("button", {
          type: "button", class: "link",
          onclick: () => {
            this.historyError = false;
            this.paginate();
          },
        }, "Try again"));
    } else if (room.atStart) {
      setChildren(this.history, room.hasCreate() ? "This is the beginning of the room."
        : "There is no earlier history you can see.");
    } else {
      setChildren(this.history);
    }
  }

  renderTyping() {
    const room = this.room;
    const others = room ? room.typing.filter((u) => u !== this.store.userId) : [];
    const names = others.map((u) => room.displayName(u));
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    this.typing.textContent = text;
    this.typing.classList.toggle("active", Boolean(text));
  }

  onScroll() {
    this.jump.hidden = this.atBottom();
    if (this.scroller.scrollTop < PAGINATE_MARGIN_PX) this.paginate();
    this.maybeRead();
  }

  // Load older events while the timeline does not fill its box (nothing to scroll yet).
  maybeFill() {
    if (this.onScreen() && this.scroller.scrollHeight <= this.scroller.clientHeight + PAGINATE_MARGIN_PX) {
      this.paginate();
    }
  }

  async paginate() {
    const room = this.room;
    if (!room || this.loading || room.atStart || !room.prevBatch || this.historyError) return;
    this.loading = true;
    this.renderHistoryStatus();
    try {
      const answer = await this.api.messages(room.id, room.prevBatch);
      room.prepend(answer.chunk ?? [], answer.end);
    } catch {
      if (room === this.room) this.historyError = true;
    } finally {
      this.loading = false;
    }
    if (room === this.room) this.render();
  }

  maybeRead() {
    if (this.room && this.onScreen() && document.visibilityState === "visible" &&
        this.atBottom()) {
      this.onRead(this.room);
    }
  }
}

// Whether `event` belongs to the set-up right after the creator made the room: the creator's
// own state, but not invites or anything about other users.
function partOfSetUp(event, creator) {
  if (event.sender !== creator) return false;
  return event.type !== "m.room.member" || event.state_key === creator;
}
