// Writing messages: Enter sends, Shift+Enter starts a new line; typing notifications go out
// while the user types and stop when they pause, send or switch rooms. Drafts stay per room.

import { byId } from "../dom.js";

const TYPING_TIMEOUT_MS = 30_000;
const TYPING_REFRESH_MS = 20_000;
const TYPING_IDLE_MS = 5_000;
const MAX_HEIGHT_PX = 200;

export class Composer {
  constructor(api, store, onSend) {
    this.api = api;
    this.store = store;
    this.onSend = onSend;
    this.room = null;
    this.drafts = new Map();
    this.typingSentAt = null;
    this.idleTimer = null;
    this.form = byId("composer");
    this.input = byId("composer-input");
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.fit();
      if (this.input.value.trim()) this.typed();
      else this.stopTyping();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  setRoom(room) {
    if (this.room) {
      this.stopTyping();
      this.drafts.set(this.room.id, this.input.value);
    }
    this.room = room;
    this.input.value = room ? this.drafts.get(room.id) ?? "" : "";
    this.fit();
  }

  focus() {
    this.input.focus();
  }

  fit() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  submit() {
    const text = this.input.value;
    if (!text.trim() || !this.room) return;
    this.input.value = "";
    this.drafts.delete(this.room.id);
    this.fit();
    this.stopTyping();
    this.onSend(this.room, text);
  }

  typed() {
    const now = Date.now();
    if (this.typingSentAt === null || now - this.typingSentAt > TYPING_REFRESH_MS) {
      this.typingSentAt = now;
      this.api.typing(this.room.id, this.store.userId, true, TYPING_TIMEOUT_MS).catch(() => {});
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSentAt === null || !this.room) return;
    this.typingSentAt = null;
    this.api.typing(this.room.id, this.store.userId, false).catch(() => {});
  }
}
