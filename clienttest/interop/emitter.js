// Runs one operation of @socket.io/redis-emitter, for the Go interop tests of adapter/redis.
// Usage: REDIS_URL=redis://... node emitter.js '{"nsp":"/","to":["room"],"except":[],"event":"e","args":[...]}'
// "op" picks the operation: "emit" (default), "socketsJoin" / "socketsLeave" (of "rooms"),
// "disconnectSockets" (with "close"), "serverSideEmit" ("event", "args").
// Binary arguments are written {"$bin": "<base64>"}. Prints "ok" once published.
"use strict";
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

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

async function main() {
  const cmd = JSON.parse(process.argv[2]);
  const client = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
  await client.connect();
  const nsp = new Emitter(client, { key: process.env.KEY || "socket.io" }).of(cmd.nsp || "/");
  let op = nsp;
  for (const r of cmd.to || []) op = op.to(r);
  for (const r of cmd.except || []) op = op.except(r);
  switch (cmd.op || "emit") {
    case "emit":
      op.emit(cmd.event, ...fromWire(cmd.args || []));
      break;
    case "socketsJoin":
      op.socketsJoin(cmd.rooms);
      break;
    case "socketsLeave":
      op.socketsLeave(cmd.rooms);
      break;
    case "disconnectSockets":
      op.disconnectSockets(Boolean(cmd.close));
      break;
    case "serverSideEmit":
      nsp.serverSideEmit(cmd.event, ...fromWire(cmd.args || []));
      break;
    default:
      throw new Error("unknown op " + cmd.op);
  }
  await client.quit(); // flushes the PUBLISH first
  process.stdout.write("ok\n");
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
