// Signing in and creating an account.

import { MatrixError } from "../api.js";
import { byId } from "../dom.js";

const MODES = {
  login: {
    title: "Sign in", submit: "Sign in", switchText: "New here?", switchButton: "Create an account",
    autocomplete: "current-password",
  },
  register: {
    title: "Create an account", submit: "Create account", switchText: "Have an account?",
    switchButton: "Sign in instead", autocomplete: "new-password",
  },
};

export class AuthView {
  // onSession({user_id, access_token, device_id}) is called once signed in.
  constructor(api, onSession) {
    this.api = api;
    this.onSession = onSession;
    this.mode = "login";
    this.screen = byId("auth-screen");
    this.form = byId("auth-form");
    this.user = byId("auth-user");
    this.password = byId("auth-password");
    this.error = byId("auth-error");
    this.submit = byId("auth-submit");
    byId("auth-server").textContent = location.host;
    byId("auth-switch").addEventListener("click", () => {
      this.setMode(this.mode === "login" ? "register" : "login");
      this.user.focus();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.setMode("login");
  }

  setMode(mode) {
    this.mode = mode;
    const text = MODES[mode];
    byId("auth-title").textContent = text.title;
    this.submit.textContent = text.submit;
    byId("auth-switch-text").textContent = text.switchText;
    byId("auth-switch").textContent = text.switchButton;
    this.password.autocomplete = text.autocomplete;
    this.error.textContent = "";
  }

  show() {
    this.screen.hidden = false;
    this.password.value = "";
    this.user.focus();
  }

  hide() {
    this.screen.hidden = true;
  }

  async send() {
    const user = this.user.value.trim();
    const password = this.password.value;
    if (!user || !password) {
      this.error.textContent = "Enter a username and a password.";
      (user ? this.password : this.user).focus();
      return;
    }
    this.error.textContent = "";
    this.submit.disabled = true;
    try {
      const session = this.mode === "login"
        ? await this.api.login(user, password)
        : await this.api.register(user.replace(/^@/, "").split(":")[0], password);
      this.onSession(session);
    } catch (error) {
      this.error.textContent = explain(error, this.mode);
      this.password.focus();
    } finally {
      this.submit.disabled = false;
    }
  }
}

function explain(error, mode) {
  if (!(error instanceof MatrixError)) return error.message;
  switch (error.errcode) {
    case "M_FORBIDDEN":
      return mode === "login" ? "Wrong username or password." : error.message;
    case "M_USER_IN_USE":
      return "That username is taken.";
    case "M_INVALID_USERNAME":
      return "Usernames may use lower-case letters, digits and . _ = - /";
    case "M_LIMIT_EXCEEDED":
      return "Too many attempts. Wait a moment and try again.";
    default:
      return error.message;
  }
}
