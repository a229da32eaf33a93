// The dialogs: new room, join a room, invite someone, leave a room. Each is a native <dialog>
// (focus moves in, Escape closes, focus returns to the button that opened it).

import { MatrixError } from "../api.js";
import { byId } from "../dom.js";
import { isUserId, joinRequest, needsVia } from "../ids.js";

// Open `dialog`, run `action(form)` on submit; close on success, show the error on failure.
function bindForm(dialog, action) {
  const form = dialog.querySelector("form");
  const error = form.querySelector(".form-error");
  const submit = form.querySelector("[type=submit]");
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => dialog.close());
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      await action(form);
      dialog.close();
    } catch (failure) {
      error.textContent = failure instanceof MatrixError || failure instanceof Error
        ? failure.message : String(failure);
    } finally {
      submit.disabled = false;
    }
  });
  return {
    open() {
      form.reset();
      error.textContent = "";
      dialog.showModal();
    },
  };
}

export class Dialogs {
  // actions: createRoom({name, topic, isPublic, alias}), join(target, servers), invite(room, userId),
  // leave(room); each returns a promise.
  constructor(actions) {
    this.room = null;
    this.create = bindForm(byId("create-dialog"), (form) => actions.createRoom({
      name: form.elements.name.value.trim(),
      topic: form.elements.topic.value.trim(),
      isPublic: form.elements.visibility.value === "public",
      alias: form.elements.alias.value.trim().replace(/^#/, ""),
    }));
    const via = byId("join-via");
    const target = byId("join-target");
    const showVia = () => {
      const required = needsVia(target.value.trim());
      via.required = required;
      byId("join-via-optional").textContent = required ? "(required for this room ID)" : "(optional)";
    };
    target.addEventListener("input", showVia);
    this.join = bindForm(byId("join-dialog"), async (form) => {
      const request = joinRequest(form.elements.target.value, form.elements.via.value);
      if (request.error) {
        (needsVia(form.elements.target.value.trim()) ? via : target).focus();
        throw new Error(request.error);
      }
      await actions.join(request.target, request.servers);
    });
    byId("join-dialog").addEventListener("close", showVia);
    this.invite = bindForm(byId("invite-dialog"), async (form) => {
      const userId = form.elements.user.value.trim();
      if (!isUserId(userId)) throw new Error("Enter a full Matrix ID, like @name:example.org");
      await actions.invite(this.room, userId);
    });
    this.leave = bindForm(byId("leave-dialog"), () => actions.leave(this.room));
  }

  openCreate(serverName) {
    for (const span of byId("create-dialog").querySelectorAll(".alias-server")) {
      span.textContent = serverName;
    }
    this.create.open();
  }

  openJoin() {
    this.join.open();
  }

  openInvite(room, name) {
    this.room = room;
    byId("invite-room-name").textContent = name;
    this.invite.open();
  }

  openLeave(room, name) {
    this.room = room;
    byId("leave-room-name").textContent = name;
    this.leave.open();
  }
}
