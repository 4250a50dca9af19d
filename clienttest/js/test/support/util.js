// Helpers shared by the tests: clients that are always cleaned up, and waits that always time out.

import { io } from "socket.io-client";
import { getBaseURL } from "./server.js";

const open = new Set();

/** The transport settings every transport-parameterised test runs with. */
export const TRANSPORT_MODES = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  // starts with long-polling and upgrades; connected() waits until the upgrade is done
  upgrade: { transports: ["polling", "websocket"] },
};

/**
 * A socket.io-client socket for namespace `nsp` on the server under test, with its own Manager
 * (forceNew). Reconnection is off unless the test asks for it. Closed after each test.
 */
export function client(nsp = "/", opts = {}) {
  const socket = io(getBaseURL() + nsp, {
    forceNew: true,
    reconnection: false,
    ...opts,
  });
  open.add(socket);
  return socket;
}

/** Closes every socket (and its Manager) the current test created. */
export function closeAll() {
  for (const socket of open) {
    socket.io.reconnection(false);
    socket.disconnect();
    if (socket.io.engine) socket.io.engine.close();
  }
  open.clear();
}

/** Resolves with the arguments of the next `event` on `emitter`, rejects after `ms`. */
export function once(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no "${event}" event within ${ms} ms`));
    }, ms);
    function on(...args) {
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args);
    }
    emitter.on(event, on);
  });
}

/** Resolves with the first `n` sets of arguments of `event` on `emitter`, rejects after `ms`. */
export function collect(emitter, event, n, ms = 3000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`only ${got.length} of ${n} "${event}" events within ${ms} ms`));
    }, ms);
    function on(...args) {
      got.push(args);
      if (got.length === n) {
        clearTimeout(timer);
        emitter.off(event, on);
        resolve(got);
      }
    }
    emitter.on(event, on);
  });
}

/** Rejects if `event` fires on `emitter` within `ms`, resolves otherwise. */
export function never(emitter, event, ms) {
  return new Promise((resolve, reject) => {
    function on(...args) {
      clearTimeout(timer);
      emitter.off(event, on);
      reject(new Error(`unexpected "${event}" event: ${JSON.stringify(args)}`));
    }
    const timer = setTimeout(() => {
      emitter.off(event, on);
      resolve();
    }, ms);
    emitter.on(event, on);
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Waits for the socket's "connect" (rejecting on connect_error), and in the "upgrade" transport
 * mode (any client allowing polling and websocket) also for the Engine.IO upgrade to websocket.
 */
export async function connected(socket, ms = 5000) {
  if (!socket.connected) {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`socket ${socket.nsp} did not connect within ${ms} ms`));
      }, ms);
      function onConnect() {
        cleanup();
        resolve();
      }
      function onError(err) {
        cleanup();
        reject(new Error(`connect_error on ${socket.nsp}: ${err.message} ${JSON.stringify(err.data)}`));
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
  const engine = socket.io.engine;
  // _upgrades: the server's offered upgrades that the client's transports allow
  if (engine._upgrades.includes("websocket") && engine.transport.name !== "websocket") {
    await once(engine, "upgrade", ms);
  }
  return socket;
}

/** client() + connected(). */
export function connect(nsp = "/", opts = {}) {
  return connected(client(nsp, opts));
}

/**
 * With connection state recovery on, every event the server stores for recovery (an event without
 * an ack, not volatile) carries the offset of the packet as one extra trailing string argument; the
 * client keeps it in socket._lastOffset and does not strip it. This drops it, after checking that
 * it is there.
 */
export function withoutOffset(socket, args) {
  if (!socket._pid) return args;
  const last = args[args.length - 1];
  if (typeof last !== "string" || last === "") {
    throw new Error(`expected a recovery offset as the last event argument, got ${JSON.stringify(args)}`);
  }
  return args.slice(0, -1);
}
