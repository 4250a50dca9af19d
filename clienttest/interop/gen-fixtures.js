// Captures what @socket.io/redis-adapter 8.x (classic and sharded) and @socket.io/redis-emitter
// publish, as byte-level fixtures for adapter/redis (testdata/fixtures-*.json).
// Usage: REDIS_URL=redis://127.0.0.1:PORT node gen-fixtures.js ../../adapter/redis/testdata
"use strict";
const fs = require("fs");
const path = require("path");
const http = require("http");
const { Server } = require("socket.io");
const { io: ioc } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");

const url = process.env.REDIS_URL;
const outDir = process.argv[2];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function node(factory) {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: factory(pub, sub) });
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  return { io, port: httpServer.address().port, close: async () => { io.close(); await pub.quit(); await sub.quit(); } };
}

async function client(port, rooms) {
  const s = ioc(`http://127.0.0.1:${port}`, { transports: ["websocket"], query: { rooms: rooms.join(",") } });
  s.on("ask", (...args) => { const cb = args.pop(); if (typeof cb === "function") cb("ack-value"); });
  await new Promise((r) => s.on("connect", r));
  return s;
}

function joinRoomsOnConnect(io) {
  io.on("connection", (socket) => {
    const rooms = String(socket.handshake.query.rooms || "");
    if (rooms) socket.join(rooms.split(","));
    socket.data = { user: "u1" };
  });
}

async function capture(spy, subscribe, steps) {
  const got = [];
  let current = "";
  await subscribe((message, channel) => got.push({ step: current, channel: channel.toString(), hex: Buffer.from(message).toString("hex") }));
  for (const [name, fn] of steps) {
    current = name;
    try {
      await fn();
    } catch (e) {
      // the spy counts as a subscriber in sharded mode, so requests expecting every node time out
    }
    await sleep(150);
  }
  return got;
}

async function classic() {
  const opts = { requestsTimeout: 1000 };
  const a = await node((p, s) => createAdapter(p, s, opts));
  const b = await node((p, s) => createAdapter(p, s, opts));
  joinRoomsOnConnect(a.io);
  joinRoomsOnConnect(b.io);
  b.io.on("hello", (arg, cb) => typeof cb === "function" && cb("from-b"));
  const c = await client(b.port, ["r1"]);
  const spy = createClient({ url });
  await spy.connect();
  const emitterClient = createClient({ url });
  await emitterClient.connect();
  const emitter = new Emitter(emitterClient);
  await sleep(200);
  const got = await capture(spy, (h) => spy.pSubscribe("socket.io*", h, true), [
    ["broadcast-all", () => a.io.emit("all", "hi", 1, -2, 1.5, true, null, { a: [1, "x"] })],
    ["broadcast-room", () => a.io.to("room1").emit("room", Buffer.from([1, 2, 3]))],
    ["broadcast-rooms-except", () => a.io.to(["r1", "r2"]).except("x").emit("multi", { k: "v" })],
    ["broadcast-volatile", () => a.io.volatile.emit("vol", 1)],
    ["emitter-user", () => emitter.to("user:42").emit("notify", { id: 5 }, Buffer.from([255]))],
    ["sockets-join", () => a.io.in("r1").socketsJoin("j")],
    ["sockets-leave", () => a.io.socketsLeave("j")],
    ["disconnect-sockets", () => a.io.in("nobody").disconnectSockets(true)],
    ["server-side-emit", () => a.io.serverSideEmit("hello", 1)],
    ["server-side-emit-ack", () => a.io.serverSideEmitWithAck("hello", 2)],
    ["fetch-sockets", () => a.io.fetchSockets()],
    ["broadcast-ack", () => a.io.timeout(1000).emitWithAck("ask", "q")],
  ]);
  c.close();
  await spy.quit();
  await emitterClient.quit();
  await a.close();
  await b.close();
  return got;
}

async function sharded() {
  const a = await node((p, s) => createShardedAdapter(p, s));
  const b = await node((p, s) => createShardedAdapter(p, s));
  joinRoomsOnConnect(a.io);
  joinRoomsOnConnect(b.io);
  b.io.on("hello", (arg, cb) => typeof cb === "function" && cb("from-b"));
  const c = await client(b.port, ["r1"]);
  const spy = createClient({ url });
  await spy.connect();
  await sleep(200);
  const respA = `socket.io#/#${a.io.of("/").adapter.uid}#`;
  const got = await capture(spy, async (h) => {
    for (const ch of ["socket.io#/#", "socket.io#/#room1#", respA]) await spy.sSubscribe(ch, h, true);
  }, [
    ["broadcast-all", () => a.io.emit("all", "hi", 1, -2, 1.5, true, null, { a: [1, "x"] })],
    ["broadcast-room", () => a.io.to("room1").emit("room", Buffer.from([1, 2, 3]))],
    ["broadcast-rooms-except", () => a.io.to(["r1", "r2"]).except("x").emit("multi", { k: "v" })],
    ["sockets-join", () => a.io.in("r1").socketsJoin("j")],
    ["disconnect-sockets", () => a.io.in("nobody").disconnectSockets(true)],
    ["server-side-emit", () => a.io.serverSideEmit("hello", 1)],
    ["server-side-emit-ack", () => a.io.serverSideEmitWithAck("hello", 2)],
    ["fetch-sockets", () => a.io.timeout(1000).fetchSockets()],
    ["broadcast-ack", () => a.io.timeout(1000).emitWithAck("ask", "q")],
  ]);
  c.close();
  await spy.quit();
  await a.close();
  await b.close();
  return got;
}

(async () => {
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "fixtures-classic.json"), JSON.stringify(await classic(), null, 1) + "\n");
  fs.writeFileSync(path.join(outDir, "fixtures-sharded.json"), JSON.stringify(await sharded(), null, 1) + "\n");
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
