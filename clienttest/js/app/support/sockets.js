// Socket.IO clients for the application suite.
//
// Every client records every event it receives from the moment it is created, so a test can start
// waiting after the event arrived (waitFor consumes the first buffered match, else waits for the next
// one). Waits always time out, with the events that did arrive in the message. Clients are closed
// after each test (hooks.js).

import { io } from "socket.io-client";
import { getBaseURL } from "./server.js";

const open = new Set();
const recorders = new WeakMap();

/** A socket.io-client socket on `/` (websocket only, own Manager, no reconnection), recording. */
export function client(opts = {}, label = "client") {
  const socket = io(getBaseURL(), {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    ...opts,
  });
  const rec = { label, events: [], waiters: [] };
  recorders.set(socket, rec);
  socket.onAny((event, ...args) => deliver(rec, event, args));
  // connect_error is reserved (not seen by onAny) and tests wait for it too
  socket.on("connect_error", (err) => deliver(rec, "connect_error", [err]));
  open.add(socket);
  return socket;
}

function deliver(rec, event, args) {
  const i = rec.waiters.findIndex((w) => w.event === event && w.match(args[0]));
  if (i >= 0) {
    const [w] = rec.waiters.splice(i, 1);
    w.resolve(args[0]);
    return;
  }
  rec.events.push({ event, args });
}

function describe(rec) {
  const seen = rec.events.map((e) => `${e.event} ${short(e.args[0])}`);
  return seen.length ? seen.join("; ") : "nothing";
}

function short(v) {
  let s;
  try {
    s = v instanceof Error ? `Error(${v.message})` : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) return "";
  return s.length > 300 ? s.slice(0, 300) + "…" : s;
}

/**
 * Resolves with the first argument of the first `event` (matching `match`, if given) that arrived
 * since the socket was created and was not consumed yet, else of the next one; rejects after `ms`.
 */
export function waitFor(socket, event, ms = 3000, match = () => true) {
  const rec = recorders.get(socket);
  const i = rec.events.findIndex((e) => e.event === event && match(e.args[0]));
  if (i >= 0) {
    const [e] = rec.events.splice(i, 1);
    return Promise.resolve(e.args[0]);
  }
  return new Promise((resolve, reject) => {
    const w = {
      event,
      match,
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v);
      },
    };
    const timer = setTimeout(() => {
      const j = rec.waiters.indexOf(w);
      if (j >= 0) rec.waiters.splice(j, 1);
      reject(new Error(`${rec.label}: no "${event}" within ${ms} ms; it received: ${describe(rec)}`));
    }, ms);
    rec.waiters.push(w);
  });
}

/** Waits for `event` whose payload has `key` equal to `value`. */
export function waitForWith(socket, event, key, value, ms = 3000) {
  return waitFor(socket, event, ms, (p) => p != null && p[key] === value);
}

/**
 * Rejects if `event` (matching `match`) was received and not consumed, or arrives within `ms`.
 * Only for proving that something does NOT happen; keep `ms` short.
 */
export async function expectNone(socket, event, ms = 300, match = () => true) {
  const rec = recorders.get(socket);
  const found = () => rec.events.find((e) => e.event === event && match(e.args[0]));
  let e = found();
  if (!e) {
    await new Promise((r) => setTimeout(r, ms));
    e = found();
  }
  if (e) throw new Error(`${rec.label}: unexpected "${event}": ${short(e.args[0])}`);
}

/** Drops every buffered `event` (e.g. the welcome notification before a test that counts). */
export function forget(socket, event) {
  const rec = recorders.get(socket);
  rec.events = rec.events.filter((e) => e.event !== event);
}

/** Emits with an acknowledgement; resolves with the ack's first argument, rejects after `ms`. */
export async function emitAck(socket, event, payload, ms = 3000) {
  try {
    return await socket.timeout(ms).emitWithAck(event, payload);
  } catch (err) {
    throw new Error(`${recorders.get(socket).label}: no ack for "${event}" within ${ms} ms (${err.message})`);
  }
}

/** A client authenticated as `user` (auth.token), connected. */
export async function connectAs(user, opts = {}) {
  const socket = client({ auth: { token: user.token }, ...opts }, user.username);
  await connected(socket);
  return socket;
}

export function connected(socket, ms = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${recorders.get(socket).label}: not connected within ${ms} ms`));
    }, ms);
    function onConnect() {
      cleanup();
      resolve(socket);
    }
    function onError(err) {
      cleanup();
      reject(new Error(`${recorders.get(socket).label}: connect_error: ${err.message} ${short(err.data)}`));
    }
    function cleanup() {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    }
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Resolves with the connect_error of a client built with `opts`; rejects if it connects. */
export function connectError(opts, ms = 5000) {
  const socket = client(opts, "unauthenticated");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no connect_error within ${ms} ms`));
    }, ms);
    function onConnect() {
      cleanup();
      reject(new Error(`connected although the handshake should be refused (socket id ${socket.id})`));
    }
    function onError(err) {
      cleanup();
      resolve(err);
    }
    function cleanup() {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    }
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Disconnects `socket` and resolves once the client has seen the disconnect. */
export function disconnect(socket) {
  open.delete(socket);
  if (!socket.connected) {
    socket.close();
    return Promise.resolve();
  }
  const done = new Promise((r) => socket.once("disconnect", r));
  socket.disconnect();
  return done;
}

export function closeAll() {
  for (const socket of open) {
    socket.disconnect();
    if (socket.io.engine) socket.io.engine.close();
  }
  open.clear();
}
