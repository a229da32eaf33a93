// The client-server API calls the web client makes, over fetch, against the node serving it.

const CLIENT = "/_matrix/client/v3";
const enc = encodeURIComponent;

// The server answered with an error ({errcode, error}).
export class MatrixError extends Error {
  constructor(status, body) {
    super(body?.error || `The server answered ${status}`);
    this.status = status;
    this.errcode = body?.errcode ?? "M_UNKNOWN";
    this.retryAfterMs = body?.retry_after_ms ?? null;
  }
}

// The request never got an answer (server down, network gone, timed out).
export class NetworkError extends Error {}

export function isAbort(error) {
  return error?.name === "AbortError";
}

let txnCounter = 0;

export function newTxnId() {
  txnCounter += 1;
  return `web.${Date.now().toString(36)}.${txnCounter}.${Math.random().toString(36).slice(2, 8)}`;
}

export class Api {
  constructor(accessToken = null) {
    this.accessToken = accessToken;
  }

  async request(method, path, { body, query, signal, timeoutMs = 30_000 } = {}) {
    let url = path.startsWith("/_") ? path : CLIENT + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        for (const item of [value].flat()) {
          if (item !== undefined && item !== null) params.append(key, String(item));
        }
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    const headers = {};
    if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (signal) signals.push(signal);
    let response;
    try {
      response = await fetch(url, {
        method, headers, signal: AbortSignal.any(signals),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new NetworkError(error?.name === "TimeoutError" ? "The server did not answer in time"
        : "Cannot reach the server");
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (!response.ok) throw new MatrixError(response.status, answer);
    return answer ?? {};
  }

  login(user, password) {
    return this.request("POST", "/login", {
      body: {
        type: "m.login.password", identifier: { type: "m.id.user", user }, password,
        initial_device_display_name: "RocketNode web",
      },
    });
  }

  register(username, password) {
    return this.request("POST", "/register", {
      body: {
        username, password, auth: { type: "m.login.dummy" },
        initial_device_display_name: "RocketNode web",
      },
    });
  }

  logout() {
    return this.request("POST", "/logout", { body: {} });
  }

  sync({ since, timeoutMs, filter, signal }) {
    return this.request("GET", "/sync", {
      query: { since, timeout: timeoutMs, filter: JSON.stringify(filter) },
      signal, timeoutMs: timeoutMs + 15_000,
    });
  }

  createRoom({ name, topic, isPublic, alias }) {
    const body = {
      preset: isPublic ? "public_chat" : "private_chat",
      visibility: isPublic ? "public" : "private",
    };
    if (name) body.name = name;
    if (topic) body.topic = topic;
    if (alias) body.room_alias_name = alias;
    return this.request("POST", "/createRoom", { body });
  }

  join(target, servers = []) {
    return this.request("POST", `/join/${enc(target)}`, {
      body: {}, query: { server_name: servers, via: servers }, timeoutMs: 60_000,
    });
  }

  invite(roomId, userId) {
    return this.request("POST", `/rooms/${enc(roomId)}/invite`, {
      body: { user_id: userId }, timeoutMs: 60_000,
    });
  }

  leave(roomId) {
    return this.request("POST", `/rooms/${enc(roomId)}/leave`, { body: {}, timeoutMs: 60_000 });
  }

  send(roomId, txnId, content) {
    return this.request("PUT", `/rooms/${enc(roomId)}/send/m.room.message/${enc(txnId)}`, {
      body: content,
    });
  }

  typing(roomId, userId, typing, timeoutMs = 30_000) {
    const body = typing ? { typing, timeout: timeoutMs } : { typing };
    return this.request("PUT", `/rooms/${enc(roomId)}/typing/${enc(userId)}`, { body });
  }

  readReceipt(roomId, eventId) {
    return this.request("POST", `/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {
      body: {},
    });
  }

  messages(roomId, from, limit = 30) {
    return this.request("GET", `/rooms/${enc(roomId)}/messages`, {
      query: { from, dir: "b", limit }, timeoutMs: 60_000,
    });
  }

  federationStatus() {
    return this.request("GET", "/_rocketnode/admin/v1/federation");
  }
}
