// The HTTP API as the console calls it: the bearer token of this tab (sessionStorage, never
// localStorage), errors in the API's own words, and a 401 that ends the session.

const KEY = "mlservice.console.session";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let expired = () => {};

// What to do when the API says the token is no longer good (it is dropped first).
export function onExpired(handler) {
  expired = handler;
}

export const session = {
  get() {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    try {
      return JSON.parse(raw);
    } catch {
      sessionStorage.removeItem(KEY);
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
  isAdmin() {
    return this.get()?.role === "admin";
  },
};

// The API's words for a refusal: {"status": ...} (or {"error": ...}), else the body's text.
async function refusal(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.status === "string") return body.status;
    if (body && typeof body.error === "string") return body.error;
  } catch {
    // not JSON: the text itself
  }
  return text.trim() || `HTTP ${response.status} ${response.statusText}`;
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

// GET /resource/auth with HTTP Basic: the token, kept for this tab only.
export async function signIn(username, password) {
  let response;
  try {
    response = await fetch("/resource/auth", {
      headers: { Authorization: "Basic " + base64(username + ":" + password) },
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "the service could not be reached: " + error.message);
  }
  if (!response.ok) throw new ApiError(response.status, await refusal(response));
  const body = await response.json();
  const said = claims(body.token);
  session.set({
    token: body.token,
    username: said.sub || username,
    role: said.role || "user",
    expires: Date.now() + body.expires_in * 1000,
  });
}

function endSession(message) {
  session.clear();
  expired(message);
}

// One call: {json} is sent as JSON, {body, type} as they are; {raw: true} gives the Response.
export async function call(method, path, { json, body, type, accept, raw } = {}) {
  const current = session.get();
  if (!current) {
    endSession("Sign in to continue.");
    throw new ApiError(401, "not signed in");
  }
  if (current.expires && Date.now() > current.expires) {
    const message = "Your session has expired; sign in again.";
    endSession(message);
    throw new ApiError(401, message);
  }
  const headers = { Authorization: "Bearer " + current.token };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (type) {
    headers["Content-Type"] = type;
  }
  if (accept) headers.Accept = accept;
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "the service could not be reached: " + error.message);
  }
  if (response.status === 401) {
    const message = await refusal(response);
    endSession("Your session ended (" + message + "); sign in again.");
    throw new ApiError(401, message);
  }
  if (!response.ok) throw new ApiError(response.status, await refusal(response));
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path) => call("GET", path);
export const post = (path, json) => call("POST", path, { json });
export const put = (path, json) => call("PUT", path, { json });
export const patch = (path, json) => call("PATCH", path, { json });
export const del = (path) => call("DELETE", path);

// A binary answer (a plot, a bundle) as a Blob, fetched with the token.
export async function blob(path) {
  const response = await call("GET", path, { raw: true });
  return response.blob();
}

const UPLOAD_TYPES = { csv: "text/csv", parquet: "application/vnd.apache.parquet", pq: "application/vnd.apache.parquet" };

// Upload a file as the raw request body (the browser streams it from disk), reporting progress
// with onProgress(sentBytes, totalBytes). Resolves to the API's answer (201 or 202).
export function upload(path, file, onProgress) {
  const current = session.get();
  if (!current) {
    endSession("Sign in to continue.");
    return Promise.reject(new ApiError(401, "not signed in"));
  }
  const extension = (file.name.split(".").pop() || "").toLowerCase();
  const type = UPLOAD_TYPES[extension] || file.type || "application/octet-stream";
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", "Bearer " + current.token);
    xhr.setRequestHeader("Content-Type", type);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      const words = body?.status ?? body?.error ?? (xhr.responseText.trim() || `HTTP ${xhr.status}`);
      if (xhr.status === 401) {
        endSession("Your session ended (" + words + "); sign in again.");
        reject(new ApiError(401, words));
      } else if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
      } else {
        reject(new ApiError(xhr.status, typeof words === "string" ? words : JSON.stringify(words)));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload was cut off (network error)")));
    xhr.send(file);
  });
}

// Follow a Celery task until it is done: onUpdate(status) after each look; resolves to its last status.
export async function follow(statusUrl, onUpdate, intervalMs = 700) {
  for (;;) {
    const status = await get(statusUrl);
    onUpdate(status);
    if (status.done) return status;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
