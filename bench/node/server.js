// Reference socket.io 4.8 server for the benchmarks: the same scenarios as cmd/benchserver (see its
// package comment), so cmd/loadtest drives both the same way.
//
//   node --expose-gc server.js --addr-file /tmp/addr [--port 0] [--redis 127.0.0.1:6379]
//
// GET /debug/stats and /debug/gc answer the same JSON as the Go server (rss, cpu_ms, conns;
// goroutines is 0 and heap_inuse is V8's heapUsed).
"use strict";

const http = require("http");
const fs = require("fs");
const { Server } = require("socket.io");

function arg(name, def) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 ? process.argv[i + 1] : def;
}

const port = Number(arg("port", "0"));
const addrFile = arg("addr-file", "");
const redisAddr = arg("redis", "");

function stats(res) {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({
    rss: mem.rss,
    cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
    goroutines: 0,
    heap_inuse: mem.heapUsed,
    conns: io.engine.clientsCount,
  }) + "\n");
}

const httpServer = http.createServer((req, res) => {
  if (req.url === "/debug/stats") return stats(res);
  if (req.url === "/debug/gc") {
    if (global.gc) global.gc();
    return stats(res);
  }
  if (!req.url.startsWith("/socket.io/")) {
    res.statusCode = 404;
    res.end();
  }
});

const io = new Server(httpServer, {});

io.on("connection", (socket) => {
  const room = socket.handshake.query.room;
  if (room) socket.join(room);
  socket.on("sync", (ack) => typeof ack === "function" && ack());
  socket.on("echo", (...args) => {
    const ack = args[args.length - 1];
    if (typeof ack === "function") ack(...args.slice(0, -1));
  });
  socket.on("fanout", (target, payload) => {
    io.to(target).emit("msg", payload);
  });
  socket.on("chat", (payload) => {
    if (room) socket.to(room).emit("msg", payload);
  });
});

async function main() {
  if (redisAddr) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pubClient = createClient({ url: "redis://" + redisAddr });
    const subClient = pubClient.duplicate();
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createAdapter(pubClient, subClient));
  }
  httpServer.listen(port, "127.0.0.1", () => {
    const a = httpServer.address();
    const addr = a.address + ":" + a.port;
    if (addrFile) fs.writeFileSync(addrFile, addr);
    console.error("node bench server listening", addr, redisAddr ? "redis " + redisAddr : "");
  });
}

function shutdown() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
