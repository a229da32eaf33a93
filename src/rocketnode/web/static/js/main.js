// The web client: signs in, then keeps the room list, the open room and its members in step with
// /sync, and carries out what the user asks for.

import { Api, newTxnId } from "./api.js";
import { byId } from "./dom.js";
import { serverOf } from "./ids.js";
import { Store } from "./model.js";
import { SyncLoop } from "./sync.js";
import { AuthView } from "./views/auth.js";
import { Composer } from "./views/composer.js";
import { Dialogs } from "./views/dialogs.js";
import { FederationPanel } from "./views/federation.js";
import { MemberList } from "./views/members.js";
import { RoomList } from "./views/roomlist.js";
import { Timeline } from "./views/timeline.js";

const SESSION_KEY = "rocketnode.session";
const WIDE = window.matchMedia("(min-width: 1100px)");
const TOAST_MS = 6_000;

function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null");
    return session?.accessToken && session?.userId ? session : null;
  } catch {
    return null;
  }
}

export function toast(message) {
  const box = byId("toasts");
  const item = document.createElement("p");
  item.className = "toast";
  item.textContent = message;
  box.append(item);
  setTimeout(() => item.remove(), TOAST_MS);
}

class App {
  constructor(session, api) {
    this.session = session;
    this.api = api;
    this.store = new Store(session.userId);
    this.currentId = null;
    this.openWhenJoined = null;
    this.readSent = new Map();
    this.membersOpen = WIDE.matches;
    this.sync = new SyncLoop(api, this.store, {
      onStatus: (status, seconds) => this.showConnection(status, seconds),
      onAuthLost: () => this.forget(),
    });
    this.roomList = new RoomList(this.store, {
      onSelect: (roomId) => this.select(roomId, { focus: true }),
      onAccept: (room, button) => this.acceptInvite(room, button),
      onDecline: (room, button) => this.declineInvite(room, button),
    });
    this.timeline = new Timeline(api, this.store, {
      onRetry: (entry) => this.transmit(this.store.rooms.get(this.currentId), entry.txnId),
      onRead: (room) => this.markRead(room),
    });
    this.composer = new Composer(api, this.store, (room, text) => this.send(room, text));
    this.members = new MemberList(this.store);
    this.federation = new FederationPanel(api);
    this.dialogs = new Dialogs({
      createRoom: (options) => this.createRoom(options),
      join: (target, servers) => this.join(target, servers),
      invite: (room, userId) => api.invite(room.id, userId),
      leave: (room) => this.leave(room),
    });
    this.bindButtons();
    this.store.addEventListener("change", (event) => this.changed(event.detail));
    // Wide screens show the member list beside the timeline; narrower ones over it, on demand.
    WIDE.addEventListener("change", (event) => this.showMembers(event.matches));
  }

  start() {
    const me = byId("me");
    me.textContent = this.session.userId;
    me.title = `Signed in as ${this.session.userId}`;
    byId("app").hidden = false;
    this.showMembers(this.membersOpen);
    this.sync.start();
    this.federation.available().then((admin) => {
      byId("federation-button").hidden = !admin;
    });
  }

  bindButtons() {
    byId("logout-button").addEventListener("click", () => this.logout());
    byId("federation-button").addEventListener("click", () => this.federation.open());
    byId("new-room-button").addEventListener("click", () => {
      this.dialogs.openCreate(serverOf(this.store.userId));
    });
    byId("join-room-button").addEventListener("click", () => this.dialogs.openJoin());
    byId("invite-button").addEventListener("click", () => {
      const room = this.current();
      if (room) this.dialogs.openInvite(room, room.name(this.store.userId));
    });
    byId("leave-button").addEventListener("click", () => {
      const room = this.current();
      if (room) this.dialogs.openLeave(room, room.name(this.store.userId));
    });
    byId("members-button").addEventListener("click", () => {
      this.showMembers(!this.membersOpen);
      if (this.membersOpen && !WIDE.matches) byId("members-close").focus();
    });
    byId("members-close").addEventListener("click", () => {
      this.showMembers(false);
      byId("members-button").focus();
    });
    byId("members").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !WIDE.matches) {
        this.showMembers(false);
        byId("members-button").focus();
      }
    });
    byId("back-button").addEventListener("click", () => {
      const roomId = this.currentId;
      byId("app").dataset.view = "list";
      [...byId("room-list").querySelectorAll("button")]
        .find((b) => b.dataset.roomId === roomId)?.focus();
    });
  }

  current() {
    return this.currentId ? this.store.rooms.get(this.currentId) ?? null : null;
  }

  showConnection(status, seconds) {
    const line = byId("connection");
    line.dataset.status = status;
    line.textContent = status === "offline" ? `Offline — retrying in ${seconds} s`
      : status === "connecting" ? "Connecting…" : "";
  }

  showMembers(open) {
    this.membersOpen = open;
    byId("members").hidden = !open || !this.current();
    byId("members-button").setAttribute("aria-expanded", String(open));
  }

  changed({ rooms }) {
    if (this.openWhenJoined && this.store.rooms.get(this.openWhenJoined)?.membership === "join") {
      const roomId = this.openWhenJoined;
      this.openWhenJoined = null;
      this.select(roomId, { focus: true });
    }
    if (this.currentId && this.store.rooms.get(this.currentId)?.membership !== "join") {
      this.select(null);
    }
    this.roomList.render();
    if (this.currentId && rooms.has(this.currentId)) this.renderRoom({ timeline: true });
    this.updateTitle();
  }

  select(roomId, { focus = false } = {}) {
    this.currentId = roomId;
    this.roomList.currentId = roomId;
    const room = this.current();
    byId("no-room").hidden = Boolean(room);
    byId("room-view").hidden = !room;
    byId("app").dataset.view = room ? "room" : "list";
    this.composer.setRoom(room);
    this.showMembers(this.membersOpen);
    this.roomList.render();
    if (!room) return;
    this.renderRoom({ timeline: false });
    this.timeline.show(room);
    if (focus) this.composer.focus();
  }

  renderRoom({ timeline }) {
    const room = this.current();
    if (!room) return;
    byId("room-name").textContent = room.name(this.store.userId);
    const topic = room.topic();
    byId("room-topic").textContent = topic;
    byId("room-topic").hidden = !topic;
    this.members.render(room);
    if (timeline) this.timeline.render();
  }

  updateTitle() {
    let unread = 0;
    for (const room of this.store.joinedRooms()) {
      if (room.id !== this.currentId) unread += room.unreadCount(this.store.userId).count;
    }
    document.title = unread ? `(${unread}) RocketNode` : "RocketNode";
  }

  send(room, text) {
    const txnId = newTxnId();
    room.addEcho(this.store.userId, txnId, { msgtype: "m.text", body: text });
    this.transmit(room, txnId);
  }

  async transmit(room, txnId) {
    const echo = room?.echo(txnId);
    if (!echo) return;
    echo.status = "sending";
    this.refresh(room);
    try {
      const answer = await this.api.send(room.id, txnId, echo.event.content);
      if (echo.status === "sending") {
        echo.status = "sent";
        echo.event = { ...echo.event, event_id: answer.event_id };
      }
    } catch {
      if (echo.status === "sending") echo.status = "failed";
    }
    this.refresh(room);
  }

  refresh(room) {
    this.roomList.render();
    if (room.id === this.currentId) this.timeline.render();
  }

  // Send a read receipt for the newest event from someone else, once per event.
  markRead(room) {
    const newest = [...room.timeline].reverse()
      .find((e) => e.event.event_id && e.event.sender !== this.store.userId && !e.status);
    if (!newest) return;
    const eventId = newest.event.event_id;
    if (this.readSent.get(room.id) === eventId || room.readReceipts.get(this.store.userId) === eventId) {
      return;
    }
    this.readSent.set(room.id, eventId);
    room.readReceipts.set(this.store.userId, eventId);
    this.roomList.render();
    this.updateTitle();
    this.api.readReceipt(room.id, eventId).catch(() => this.readSent.delete(room.id));
  }

  async createRoom(options) {
    const answer = await this.api.createRoom(options);
    this.openWhenJoined = answer.room_id;
    this.changed({ rooms: new Set() });
  }

  async join(target, servers) {
    const answer = await this.api.join(target, servers);
    this.openWhenJoined = answer.room_id;
    this.changed({ rooms: new Set() });
  }

  async leave(room) {
    await this.api.leave(room.id);
    if (this.currentId === room.id) this.select(null);
    byId("new-room-button").focus();
  }

  async acceptInvite(room, button) {
    button.disabled = true;
    const servers = [room.inviter, room.id].map(serverOf).filter((s, i, all) => s && all.indexOf(s) === i);
    try {
      await this.join(room.id, servers);
    } catch (error) {
      toast(`Could not join: ${error.message}`);
      button.disabled = false;
    }
  }

  async declineInvite(room, button) {
    button.disabled = true;
    try {
      await this.api.leave(room.id);
    } catch (error) {
      toast(`Could not decline: ${error.message}`);
      button.disabled = false;
    }
  }

  async logout() {
    this.sync.stop();
    this.composer.setRoom(null);
    try {
      await this.api.logout();
    } catch {
      // The session ends here either way.
    }
    this.forget();
  }

  forget() {
    this.sync.stop();
    localStorage.removeItem(SESSION_KEY);
    location.reload();
  }
}

function main() {
  const api = new Api();
  const begin = (session) => {
    api.accessToken = session.accessToken;
    new App(session, api).start();
  };
  const auth = new AuthView(api, (answer) => {
    const session = {
      userId: answer.user_id, accessToken: answer.access_token, deviceId: answer.device_id,
    };
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    auth.hide();
    begin(session);
  });
  const session = loadSession();
  if (session) begin(session);
  else auth.show();
}

main();
