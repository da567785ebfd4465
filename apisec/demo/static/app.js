// The apisec demo page: buttons that call the API on another origin with fetch.
// Every result is written into the DOM (#last and #log entries carry data-step,
// data-status and data-outcome) so a browser test can read what happened.
"use strict";

const api = document.querySelector('meta[name="apisec-api"]').content;
let accessToken = null;

const SHOWN_HEADERS = [
  "content-type", "www-authenticate", "retry-after", "ratelimit", "ratelimit-policy",
  "x-ratelimit-limit", "x-ratelimit-remaining", "access-control-allow-origin",
];

function setToken(token) {
  accessToken = token;
  const state = document.getElementById("token-state");
  state.textContent = token ? "yes (" + token.length + " characters, never stored)" : "none";
  state.dataset.hasToken = token ? "true" : "false";
}

function record(step, result) {
  const last = document.getElementById("last");
  last.dataset.step = step;
  last.dataset.status = String(result.status);
  last.dataset.outcome = result.outcome;
  last.textContent = step + ": " + (result.status || "blocked") + " " + result.summary;

  const item = document.createElement("li");
  item.dataset.step = step;
  item.dataset.status = String(result.status);
  item.dataset.outcome = result.outcome;
  for (const [name, value] of Object.entries(result.data || {})) {
    item.dataset[name] = value;
  }
  const title = document.createElement("strong");
  title.textContent = step + " → " + (result.status || "blocked by the browser");
  const detail = document.createElement("pre");
  detail.textContent = result.summary + (result.details ? "\n" + result.details : "");
  item.append(title, detail);
  const log = document.getElementById("log");
  log.prepend(item);
  log.dataset.count = String(log.children.length);
}

async function request(path, options) {
  // Resolves to {status, headers, body}, or {status: 0} when the browser refused
  // to hand over the response (CORS) or the API could not be reached.
  const init = Object.assign({ credentials: "include" }, options || {});
  init.headers = Object.assign({}, init.headers || {});
  if (accessToken && init.auth !== false) {
    init.headers["Authorization"] = "Bearer " + accessToken;
  }
  delete init.auth;
  let response;
  try {
    response = await fetch(api + path, init);
  } catch (error) {
    return { status: 0, error: String(error) };
  }
  const headers = {};
  for (const name of SHOWN_HEADERS) {
    const value = response.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  const text = await response.text();
  let body = text;
  try { body = text ? JSON.parse(text) : null; } catch (error) { /* keep the text */ }
  return { status: response.status, headers: headers, body: body };
}

function describe(result) {
  if (result.status === 0) {
    return {
      status: 0, outcome: "blocked",
      summary: "fetch failed: the browser blocked the response (CORS) or the API is down",
      details: result.error,
    };
  }
  const ok = result.status >= 200 && result.status < 300;
  const body = result.body && typeof result.body === "object" ? Object.assign({}, result.body) : result.body;
  if (body && body.access_token) body.access_token = "(" + body.access_token.length + " characters)";
  return {
    status: result.status,
    outcome: ok ? "ok" : "http-error",
    summary: ok ? "OK" : (result.body && result.body.title) || "error",
    details: JSON.stringify({ headers: result.headers, body: body }, null, 2),
  };
}

const actions = {
  async login() {
    const result = await request("/auth/login", {
      method: "POST", auth: false,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: document.getElementById("password").value,
      }),
    });
    if (result.status === 200) setToken(result.body.access_token);
    return describe(result);
  },
  async call() {
    return describe(await request("/api/orders"));
  },
  async refresh() {
    const result = await request("/auth/refresh", { method: "POST", auth: false });
    if (result.status === 200) setToken(result.body.access_token);
    else if (result.status === 401) setToken(null);
    return describe(result);
  },
  async scope() {
    return describe(await request("/api/orders", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    }));
  },
  async burst() {
    const results = await Promise.all(
      Array.from({ length: 15 }, () => request("/api/orders"))
    );
    const statuses = results.map((r) => r.status);
    const limited = results.find((r) => r.status === 429);
    const shown = describe(limited || results[results.length - 1]);
    shown.summary = "statuses: " + statuses.join(", ");
    shown.outcome = limited ? "http-error" : shown.outcome;
    shown.status = limited ? 429 : shown.status;
    shown.data = {
      statuses: statuses.join(","),
      retryAfter: limited && limited.headers["retry-after"] ? limited.headers["retry-after"] : "",
    };
    return shown;
  },
  async anonymous() {
    return describe(await request("/api/orders", { auth: false }));
  },
  async logout() {
    const result = await request("/auth/logout", { method: "POST", auth: false });
    setToken(null);
    return describe(result);
  },
};

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("page-origin").textContent = window.location.origin;
  for (const [step, action] of Object.entries(actions)) {
    document.getElementById(step).addEventListener("click", async () => {
      record(step, await action());
    });
  }
  document.body.dataset.ready = "true";
});
