// A Node socket.io 4.8 server with @socket.io/redis-adapter, driven by the Go interop tests of
// adapter/redis over stdin/stdout (one JSON object per line).
//
// Environment: REDIS_URL (redis://127.0.0.1:6379), PORT (0 = any), MODE ("classic", "sharded",
// "sharded-static", "sharded-dynamic-private"),
// KEY (channel prefix, default "socket.io").
// Sockets join the rooms of their "rooms" query parameter (comma separated) and keep
// {user: <"user" query parameter>} as socket.data; "ping-node" is acknowledged with "pong".
// Server-side events "hello" are answered (when an ack is asked) with "from-node" and reported on
// stdout as {"event":"hello","args":[...]}.
// Commands: {"id", "cmd": "emit"|"emitWithAck"|"fetch"|"socketsJoin"|"socketsLeave"|"disconnectSockets"|
// "serverSideEmit"|"serverSideEmitWithAck"|"serverCount", "rooms", "except", "event", "args", "join",
// "leave", "close", "timeout"}.
// Binary arguments are written {"$bin": "<base64>"}.
"use strict";
const http = require("http");
const readline = require("readline");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const fromWire = (v) => {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string") return Buffer.from(v.$bin, "base64");
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromWire(v[k]);
    return o;
  }
  return v;
};
const toWire = (v) => {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $bin: Buffer.from(v).toString("base64") };
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toWire(v[k]);
    return o;
  }
  return v;
};

async function main() {
  const url = process.env.REDIS_URL || "redis://127.0.0.1:6379";
  const key = process.env.KEY || "socket.io";
  // MODE: classic, sharded (subscriptionMode "dynamic"), sharded-static, sharded-dynamic-private
  const mode = process.env.MODE || "classic";
  const sharded = mode.startsWith("sharded");
  const subscriptionMode = mode === "sharded" ? "dynamic" : mode.replace(/^sharded-/, "");
  const pub = createClient({ url });
  const sub = pub.duplicate();
  pub.on("error", (e) => out({ event: "redis-error", message: String(e) }));
  sub.on("error", (e) => out({ event: "redis-error", message: String(e) }));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: sharded
      ? createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode })
      : createAdapter(pub, sub, { key, requestsTimeout: 2000 }),
    pingInterval: 2000,
    pingTimeout: 2000,
  });

  io.on("connection", (socket) => {
    const q = socket.handshake.query;
    if (q.rooms) socket.join(String(q.rooms).split(","));
    socket.data = { user: q.user };
    socket.on("ping-node", (cb) => typeof cb === "function" && cb("pong"));
  });
  io.on("hello", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ event: "hello", args: toWire(args) });
    if (cb) cb("from-node");
  });

  const target = (cmd) => {
    let op = io;
    for (const r of cmd.rooms || []) op = op.to(r);
    for (const r of cmd.except || []) op = op.except(r);
    return op;
  };

  const handlers = {
    emit: async (cmd) => {
      target(cmd).emit(cmd.event, ...fromWire(cmd.args || []));
      return true;
    },
    emitWithAck: async (cmd) => {
      const res = await target(cmd).timeout(cmd.timeout || 2000).emitWithAck(cmd.event, ...fromWire(cmd.args || []));
      return toWire(res);
    },
    fetch: async (cmd) => {
      const sockets = await target(cmd).fetchSockets();
      return sockets.map((s) => ({ id: s.id, user: s.data && s.data.user, rooms: [...s.rooms] }));
    },
    socketsJoin: async (cmd) => {
      target(cmd).socketsJoin(cmd.join);
      return true;
    },
    socketsLeave: async (cmd) => {
      target(cmd).socketsLeave(cmd.leave);
      return true;
    },
    disconnectSockets: async (cmd) => {
      target(cmd).disconnectSockets(Boolean(cmd.close));
      return true;
    },
    serverSideEmit: async (cmd) => {
      io.serverSideEmit(cmd.event, ...fromWire(cmd.args || []));
      return true;
    },
    serverSideEmitWithAck: async (cmd) => {
      return toWire(await io.serverSideEmitWithAck(cmd.event, ...fromWire(cmd.args || [])));
    },
    serverCount: async () => io.of("/").adapter.serverCount(),
  };

  readline.createInterface({ input: process.stdin }).on("line", async (line) => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      return out({ error: "bad command: " + e.message });
    }
    try {
      const h = handlers[cmd.cmd];
      if (!h) throw new Error("unknown command " + cmd.cmd);
      out({ id: cmd.id, result: await h(cmd) });
    } catch (e) {
      out({ id: cmd.id, error: String(e && e.message ? e.message : e) });
    }
  });
  process.stdin.on("end", () => process.exit(0));

  httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
    out({ event: "listening", port: httpServer.address().port });
  });
}

main().catch((e) => {
  out({ event: "fatal", message: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
