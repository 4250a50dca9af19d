// REST helpers for the application suite (fetch is built into Node 20).

import { getBaseURL } from "./server.js";

/** One REST call; resolves with { status, body } whatever the status. */
export async function api(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(getBaseURL() + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, body: parsed };
}

/** A REST call that must succeed (2xx); resolves with `data`. */
export async function call(method, path, opts = {}) {
  const { status, body } = await api(method, path, opts);
  if (status < 200 || status > 299) {
    throw new Error(`${method} ${path} answered ${status}: ${JSON.stringify(body)}`);
  }
  return body ? body.data : undefined;
}

let seq = 0;
const runTag = Math.random().toString(36).slice(2, 6);

/**
 * Registers a fresh user. Resolves with { id, username, displayName, token, refreshToken, user }.
 * Every test uses its own users: a user sits in at most one open lobby and one search.
 */
export async function newUser(tag = "u") {
  seq += 1;
  const username = `${tag}${seq}_${runTag}`;
  const data = await call("POST", "/api/auth/register", {
    body: {
      username,
      email: `${username}@example.test`,
      password: "correct horse battery",
      displayName: `${tag.toUpperCase()} ${seq}`,
    },
  });
  return {
    id: data.user.id,
    username: data.user.username,
    displayName: data.user.displayName,
    token: data.accessToken,
    refreshToken: data.refreshToken,
    user: data.user,
  };
}

export function newUsers(tags) {
  return Promise.all(tags.map((t) => newUser(t)));
}

/** `a` sends a friend request to `b`, `b` accepts it. Resolves with the friendship. */
export async function befriend(a, b) {
  const req = await call("POST", "/api/friends/requests", { token: a.token, body: { userId: b.id } });
  return call("POST", `/api/friends/requests/${req.id}/accept`, { token: b.token });
}

/** Lobby of party-trivia/casual (capacity 2..8) hosted by `host`, joined over REST by `others`. */
export async function createLobby(host, others = [], body = {}) {
  const lobby = await call("POST", "/api/lobbies", {
    token: host.token,
    body: { gameId: "party-trivia", gameMode: "casual", ...body },
  });
  for (const u of others) await call("POST", `/api/lobbies/${lobby.id}/join`, { token: u.token });
  return lobby;
}
