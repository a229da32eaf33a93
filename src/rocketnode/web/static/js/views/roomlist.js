// The sidebar: invites waiting for an answer, then the joined rooms with their unread counts and
// last message, most recently active first.

import { avatar, byId, h, setChildren } from "../dom.js";
import { isRedacted, messageText } from "../events.js";
import { serverOf } from "../ids.js";

export class RoomList {
  constructor(store, { onSelect, onAccept, onDecline }) {
    this.store = store;
    this.onSelect = onSelect;
    this.onAccept = onAccept;
    this.onDecline = onDecline;
    this.currentId = null;
    this.list = byId("room-list");
    this.invites = byId("invite-list");
  }

  render() {
    const me = this.store.userId;
    const focusKey = document.activeElement?.dataset?.focusKey;
    const rooms = this.store.joinedRooms();
    setChildren(this.list, rooms.map((room) => h("li", {}, this.roomButton(room, me))));
    byId("no-rooms").hidden = rooms.length > 0;
    const invited = this.store.invitedRooms();
    setChildren(this.invites, invited.map((room) => this.invite(room, me)));
    byId("invites").hidden = invited.length === 0;
    if (focusKey) {
      const again = [...byId("sidebar").querySelectorAll("button")]
        .find((button) => button.dataset.focusKey === focusKey);
      again?.focus();
    }
  }

  roomButton(room, me) {
    const name = room.name(me);
    const last = room.lastMessage();
    const unread = room.id === this.currentId ? { count: 0, more: false } : room.unreadCount(me);
    let preview = "No messages yet";
    if (last) {
      const who = last.sender === me ? "You" : room.displayName(last.sender);
      preview = `${who}: ${isRedacted(last) ? "message deleted" : messageText(last)}`;
    }
    const label = unread.count
      ? h("span", { class: "badge", "aria-label": `${unread.count}${unread.more ? " or more" : ""} unread` },
        `${unread.count}${unread.more ? "+" : ""}`)
      : null;
    return h("button", {
      type: "button", class: `room-item${unread.count ? " unread" : ""}`,
      dataset: { roomId: room.id, focusKey: `open:${room.id}` },
      "aria-current": room.id === this.currentId ? "true" : false,
      onclick: () => this.onSelect(room.id),
    },
    avatar(room.id, name),
    h("span", { class: "room-item-text" },
      h("span", { class: "room-item-name" }, name),
      h("span", { class: "room-item-last" }, preview)),
    label);
  }

  invite(room, me) {
    const name = room.name(me);
    const inviter = room.inviter;
    return h("li", { class: "invite", dataset: { roomId: room.id } },
      h("div", { class: "invite-head" },
        avatar(room.id, name),
        h("div", { class: "invite-text" },
          h("span", { class: "room-item-name" }, name),
          inviter ? h("span", { class: "room-item-last" },
            `from ${room.displayName(inviter)} · ${serverOf(inviter)}`) : null)),
      h("div", { class: "invite-actions" },
        h("button", {
          type: "button", class: "primary small", dataset: { focusKey: `accept:${room.id}` },
          "aria-label": `Accept the invite to ${name}`,
          onclick: (event) => this.onAccept(room, event.currentTarget),
        }, "Accept"),
        h("button", {
          type: "button", class: "small", dataset: { focusKey: `decline:${room.id}` },
          "aria-label": `Decline the invite to ${name}`,
          onclick: (event) => this.onDecline(room, event.currentTarget),
        }, "Decline")));
  }
}
