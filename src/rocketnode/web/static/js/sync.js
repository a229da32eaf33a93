// The /sync long-poll loop: one initial sync, then incremental ones from next_batch, retried
// with growing pauses while the server cannot be reached.

import { isAbort, MatrixError } from "./api.js";

const POLL_TIMEOUT_MS = 30_000;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
export const SYNC_FILTER = {
  room: { timeline: { limit: 30 }, state: { lazy_load_members: false } },
  presence: { not_types: ["*"] },
};

export class SyncLoop {
  // onStatus(status, detail): "connecting" | "live" | "offline" (detail: seconds to retry);
  // onAuthLost(): the access token is no longer valid.
  constructor(api, store, { onStatus, onAuthLost }) {
    this.api = api;
    this.store = store;
    this.onStatus = onStatus;
    this.onAuthLost = onAuthLost;
    this.controller = null;
    this.nextBatch = null;
  }

  start() {
    this.controller = new AbortController();
    this.run(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  async run(signal) {
    let retryMs = FIRST_RETRY_MS;
    this.onStatus("connecting");
    while (!signal.aborted) {
      try {
        const initial = this.nextBatch === null;
        const response = await this.api.sync({
          since: this.nextBatch ?? undefined,
          timeoutMs: initial ? 0 : POLL_TIMEOUT_MS,
          filter: SYNC_FILTER,
          signal,
        });
        if (signal.aborted) return;
        this.nextBatch = response.next_batch;
        this.store.applySync(response, initial);
        retryMs = FIRST_RETRY_MS;
        this.onStatus("live");
      } catch (error) {
        if (signal.aborted || isAbort(error)) return;
        if (error instanceof MatrixError && error.errcode === "M_UNKNOWN_TOKEN") {
          this.onAuthLost();
          return;
        }
        const waitMs = error.retryAfterMs ?? retryMs;
        this.onStatus("offline", Math.round(waitMs / 1000));
        await sleep(waitMs, signal);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      }
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
