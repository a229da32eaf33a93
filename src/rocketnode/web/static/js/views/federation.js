// The admin's view of federation: every server this node sends to, with its state, queue depth,
// last success and last error (GET /_rocketnode/admin/v1/federation), refreshed while open.

import { byId, formatAgo, formatFull, h, setChildren } from "../dom.js";

const REFRESH_MS = 5_000;
const STATES = {
  ok: ["ok", "OK"],
  backing_off: ["backing-off", "Backing off"],
  failing: ["failing", "Failing"],
};

export class FederationPanel {
  constructor(api) {
    this.api = api;
    this.timer = null;
    this.dialog = byId("federation-dialog");
    this.rows = byId("federation-rows");
    this.error = this.dialog.querySelector(".form-error");
    for (const button of this.dialog.querySelectorAll("[data-close]")) {
      button.addEventListener("click", () => this.dialog.close());
    }
    byId("federation-refresh").addEventListener("click", () => this.refresh());
    this.dialog.addEventListener("close", () => clearInterval(this.timer));
  }

  // Whether this user may see the panel: the admin API answers them.
  async available() {
    try {
      await this.api.federationStatus();
      return true;
    } catch {
      return false;
    }
  }

  open() {
    this.dialog.showModal();
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    try {
      const answer = await this.api.federationStatus();
      this.error.textContent = "";
      this.render(answer.destinations ?? []);
    } catch (error) {
      this.error.textContent = `Could not load the federation status: ${error.message}`;
    }
  }

  render(destinations) {
    const now = Date.now();
    setChildren(this.rows, destinations.map((d) => {
      const [stateClass, stateText] = STATES[d.state] ?? ["failing", d.state];
      let stateDetail = null;
      if (d.state === "backing_off" && d.retry_after_ts) {
        stateDetail = h("span", { class: "cell-detail" },
          `retry in ${Math.max(0, Math.round((d.retry_after_ts - now) / 1000))} s`);
      } else if (d.state === "failing" && d.failing_since_ts) {
        stateDetail = h("span", { class: "cell-detail" }, `since ${formatAgo(d.failing_since_ts, now)}`);
      }
      return h("tr", { dataset: { destination: d.destination, state: d.state } },
        h("th", { scope: "row" }, d.destination),
        h("td", {}, h("span", { class: `pill ${stateClass}` }, stateText), stateDetail),
        h("td", { class: "number" }, String(d.queue_depth ?? 0),
          d.pending_edus ? h("span", { class: "cell-detail" }, `+${d.pending_edus} EDUs`) : null),
        h("td", { title: d.last_success_ts ? formatFull(d.last_success_ts) : "" },
          formatAgo(d.last_success_ts, now)),
        h("td", { class: "error-cell" }, d.last_error
          ? [h("span", { class: "error-text", title: d.last_error }, d.last_error),
            h("span", { class: "cell-detail" }, formatAgo(d.last_error_ts, now))]
          : h("span", { class: "muted" }, "none")));
    }));
    byId("federation-empty").hidden = destinations.length > 0;
    byId("federation-updated").textContent = `Updated ${new Intl.DateTimeFormat(undefined,
      { timeStyle: "medium" }).format(new Date(now))}`;
  }
}
