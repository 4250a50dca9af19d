// Reference implementation, in Node with the real `socket.io` 4.8 package, of the server that
// `go run ./cmd/conformance -suite client` runs. The JS suite runs against it (SERVER=node) to prove
// that the tests themselves are right; the same tests must then pass against the Go server.
//
// Part 1 mirrors packages/socket.io-client/test/support/server.ts of socketio/socket.io (the server
// socket.io-client's own test suite uses) event for event. Part 2 ("EXTRA") adds what that file lacks
// but our suite needs (rooms, broadcasts, server-side acks, server-initiated disconnects, middleware
// errors carrying data). The Go server must implement both parts identically.
//
// Usage: node reference-server.js [-addr HOST:PORT | -addr :PORT]   (default :3210)

import { createServer as createHTTPServer } from "node:http";
import { pathToFileURL } from "node:url";
import { Server } from "socket.io";

function parseAddr(argv) {
  let addr = ":3210";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-addr" || a === "--addr") addr = argv[++i];
    else if (a.startsWith("-addr=") || a.startsWith("--addr=")) addr = a.slice(a.indexOf("=") + 1);
    else if (a === "-suite" || a === "--suite") i++; // accepted for symmetry with cmd/conformance
  }
  const idx = addr.lastIndexOf(":");
  const host = addr.slice(0, idx) || undefined;
  const port = Number(addr.slice(idx + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad -addr ${JSON.stringify(addr)}`);
  }
  return { host, port };
}

export function createServer() {
  const io = new Server({
    pingInterval: 2000,
    connectionStateRecovery: {},
    allowRequest: (req, callback) => {
      // a fixed delay, so that the client-side connection timeout can be tested
      setTimeout(() => callback(null, true), 10);
    },
  });

  // ---------------------------------------------------------------------------------------------
  // Part 1: exactly what server.ts provides.
  // ---------------------------------------------------------------------------------------------

  io.of("/foo").on("connection", (socket) => {
    socket.on("getId", (cb) => cb(socket.id));
  });
  io.of("/timeout_socket").on("connection", () => {});
  io.of("/valid").on("connection", () => {});
  io.of("/asd").on("connection", () => {});
  io.of("/abc").on("connection", (socket) => {
    socket.emit("handshake", socket.handshake);
  });

  io.use((socket, next) => {
    if (socket.request._query.fail) return next(new Error("Auth failed (main namespace)"));
    next();
  });
  io.of("/no").use((socket, next) => {
    next(new Error("Auth failed (custom namespace)"));
  });

  io.on("connection", (socket) => {
    socket.on("hi", () => socket.emit("hi"));
    socket.on("echo", (arg, cb) => cb(arg));

    socket.on("ack", () => {
      socket.emit("ack", (a, b) => {
        if (a === 5 && b.test) socket.emit("got it");
      });
    });

    socket.on("getAckDate", (data, cb) => cb(new Date()));
    socket.on("getDate", () => socket.emit("takeDate", new Date()));
    socket.on("getDateObj", () => socket.emit("takeDateObj", { date: new Date() }));
    socket.on("getUtf8", () => {
      socket.emit("takeUtf8", "てすと");
      socket.emit("takeUtf8", "Я Б Г Д Ж Й");
      socket.emit("takeUtf8", "Ä ä Ü ü ß");
      socket.emit("takeUtf8", "utf8 — string");
      socket.emit("takeUtf8", "utf8 — string");
    });
    socket.on("false", () => socket.emit("false", false));

    socket.on("doge", () => socket.emit("doge", Buffer.from("asdfasdf", "utf8")));
    socket.on("buffa", (a) => {
      if (Buffer.isBuffer(a)) socket.emit("buffack");
    });
    // server.ts asserts with expect.js (a failed assertion throws, so no answer is sent); the
    // observable behaviour is: answer only when the payload has the expected shape.
    socket.on("jsonbuff", (a) => {
      if (a.hello === "lol" && Buffer.isBuffer(a.message) && a.goodbye === "gotcha") {
        socket.emit("jsonbuff-ack");
      }
    });
    let receivedAbuff1 = false;
    socket.on("abuff1", (a) => {
      if (Buffer.isBuffer(a)) receivedAbuff1 = true;
    });
    socket.on("abuff2", () => {
      if (receivedAbuff1) socket.emit("abuff2-ack");
    });
    socket.on("blob", (a) => {
      if (Buffer.isBuffer(a)) socket.emit("back");
    });
    socket.on("jsonblob", (a) => {
      if (a.hello === "lol" && Buffer.isBuffer(a.message) && a.goodbye === "gotcha") {
        socket.emit("jsonblob-ack");
      }
    });
    let receivedblob1 = false;
    let receivedblob2 = false;
    socket.on("blob1", (a) => {
      if (Buffer.isBuffer(a)) receivedblob1 = true;
    });
    socket.on("blob2", (a) => {
      if (receivedblob1 && a === "second") receivedblob2 = true;
    });
    socket.on("blob3", (a) => {
      if (Buffer.isBuffer(a) && receivedblob1 && receivedblob2) socket.emit("blob3-ack");
    });
    socket.on("getbin", () => socket.emit("takebin", Buffer.from("asdfasdf", "utf8")));
    socket.on("getHandshake", (cb) => cb(socket.handshake));
    socket.on("getId", (cb) => cb(socket.id));
  });

  // ---------------------------------------------------------------------------------------------
  // Part 2: EXTRA — not in server.ts. Needed by clienttest/js; the Go server must provide the same.
  // ---------------------------------------------------------------------------------------------

  // EXTRA namespace "/jstest": rooms, broadcasts, volatile, server-side acks, server-initiated
  // disconnects. No middleware.
  io.of("/jstest").on("connection", (socket) => {
    // "join" (rooms: string | string[], cb) -> joins, then cb(rooms of the socket, own id included)
    socket.on("join", (rooms, cb) => {
      socket.join(rooms);
      cb([...socket.rooms]);
    });
    // "leave" (room: string, cb) -> leaves, then cb(rooms of the socket)
    socket.on("leave", (room, cb) => {
      socket.leave(room);
      cb([...socket.rooms]);
    });
    // "rooms" (cb) -> cb(rooms of the socket)
    socket.on("rooms", (cb) => cb([...socket.rooms]));
    // "broadcast" (opts, cb) with opts = {event, args?: any[], to?: string[], except?: string[],
    //   self?: boolean, volatile?: boolean}:
    //   self false/absent: socket.broadcast (the sender is excluded) .to(to).except(except)
    //   self true:         the whole namespace (sender included)   .to(to).except(except)
    //   volatile true:     the emit is volatile
    //   emits `event` with ...args, then cb() once the broadcast has been handed to the adapter.
    socket.on("broadcast", (opts, cb) => {
      let op = opts.self ? socket.nsp : socket.broadcast;
      if (opts.to && opts.to.length) op = op.to(opts.to);
      if (opts.except && opts.except.length) op = op.except(opts.except);
      if (opts.volatile) op = op.volatile;
      op.emit(opts.event, ...(opts.args || []));
      cb();
    });
    // "ask" (opts, cb) with opts = {event, args?: any[], timeout: ms}: the server emits `event`
    //   with ...args and an ack, waiting at most `timeout` ms, then
    //   cb({ok: true, replies: [...the client's ack args]}) or cb({ok: false, error: "<message>"}).
    socket.on("ask", (opts, cb) => {
      socket.timeout(opts.timeout).emit(opts.event, ...(opts.args || []), (err, ...replies) => {
        if (err) cb({ ok: false, error: err.message });
        else cb({ ok: true, replies });
      });
    });
    // "server-disconnect" () -> socket.disconnect(): the client sees "io server disconnect" and
    //   does not reconnect on its own.
    socket.on("server-disconnect", () => socket.disconnect());
    // "close-transport" () -> closes the underlying Engine.IO connection (socket.conn.close()):
    //   the client sees "transport close" and reconnects; the state is recoverable.
    socket.on("close-transport", () => socket.conn.close());
  });

  // EXTRA namespace "/jstest-auth": a middleware that accepts only auth {token: "secret"} and
  // otherwise fails with message "unauthorized" and data {code: 401, token: <the token or null>}.
  io.of("/jstest-auth").use((socket, next) => {
    const token = socket.handshake.auth ? socket.handshake.auth.token : undefined;
    if (token === "secret") {
      socket.data.user = "alice";
      return next();
    }
    const err = new Error("unauthorized");
    err.data = { code: 401, token: token === undefined ? null : token };
    next(err);
  });
  io.of("/jstest-auth").on("connection", (socket) => {
    // "whoami" (cb) -> cb(what the middleware stored for this socket: "alice")
    socket.on("whoami", (cb) => cb(socket.data.user));
  });

  return io;
}

const isMain = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { host, port } = parseAddr(process.argv.slice(2));
  const io = createServer();
  const httpServer = createHTTPServer();
  io.attach(httpServer);
  httpServer.listen(port, host, () => {
    const a = httpServer.address();
    console.log(`reference socket.io server listening on ${a.address}:${a.port}`);
  });
  const stop = () => {
    io.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
