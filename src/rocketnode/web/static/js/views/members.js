// The member list of the open room: who is in it, who is invited, and each one's server.

import { avatar, byId, h, setChildren } from "../dom.js";
import { localpartOf, serverOf } from "../ids.js";

const SHOWN = [["join", "In the room"], ["invite", "Invited"]];

export class MemberList {
  constructor(store) {
    this.store = store;
    this.list = byId("member-list");
    this.title = byId("members-title");
  }

  render(room) {
    if (!room) {
      setChildren(this.list);
      return;
    }
    const members = room.members();
    const joined = members.filter((m) => m.membership === "join").length;
    this.title.textContent = `Members (${joined})`;
    const groups = [];
    for (const [membership, label] of SHOWN) {
      const found = members.filter((m) => m.membership === membership);
      if (!found.length) continue;
      groups.push(h("li", { class: "member-group" }, h("h3", {}, `${label} · ${found.length}`),
        h("ul", {}, found.map((m) => this.member(room, m)))));
    }
    setChildren(this.list, groups);
  }

  member(room, member) {
    const name = room.displayName(member.userId);
    const me = member.userId === this.store.userId;
    const server = serverOf(member.userId);
    return h("li", { class: "member", dataset: { userId: member.userId }, title: member.userId },
      avatar(member.userId, name),
      h("span", { class: "member-name" }, name, me ? h("span", { class: "you" }, " (you)") : null),
      h("span", { class: "member-id" },
        h("span", { class: "localpart" }, `@${localpartOf(member.userId)}`),
        h("span", { class: "visually-hidden" }, ":"),
        h("span", { class: "server", title: `Account on ${server}` }, server)));
  }
}
