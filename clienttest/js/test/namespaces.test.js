// Namespaces, the handshake and auth payload, and middleware errors.

import { expect } from "chai";
import { client, connect, connected, once, never, sleep, withoutOffset } from "./support/util.js";

describe("namespaces", function () {
  it("gives each namespace socket its own id, different from the Engine.IO id", async function () {
    const main = await connect("/");
    const foo = await connect("/foo");
    expect(await main.emitWithAck("getId")).to.equal(main.id);
    expect(await foo.emitWithAck("getId")).to.equal(foo.id);
    expect(main.id).to.be.a("string").and.not.equal(main.io.engine.id);
    expect(foo.id).to.be.a("string").and.not.equal(foo.io.engine.id);
    expect(main.id).to.not.equal(foo.id);
  });

  it("multiplexes several namespaces over one connection", async function () {
    const main = client("/");
    // Manager.socket() connects the namespace socket by itself (autoConnect): calling connect()
    // again on an open Manager would send a second CONNECT packet
    const foo = main.io.socket("/foo");
    const abc = main.io.socket("/abc");
    const handshake = once(abc, "handshake");
    await Promise.all([connected(main), connected(foo), connected(abc)]);
    expect(foo.io.engine).to.equal(main.io.engine);
    const ids = await Promise.all([main.emitWithAck("getId"), foo.emitWithAck("getId")]);
    expect(ids).to.deep.equal([main.id, foo.id]);
    await handshake;
    foo.disconnect();
    abc.disconnect();
    // leaving one namespace does not close the connection of the others
    await sleep(100);
    expect(main.connected).to.equal(true);
    expect(await main.emitWithAck("echo", "still here")).to.equal("still here");
  });

  it("lets a namespace socket leave and join again on the same connection", async function () {
    const main = await connect("/");
    const foo = main.io.socket("/foo"); // connects by itself (autoConnect)
    await connected(foo);
    const firstId = foo.id;
    foo.disconnect();
    await sleep(50);
    foo.connect();
    await connected(foo);
    expect(foo.id).to.not.equal(firstId);
    expect(await foo.emitWithAck("getId")).to.equal(foo.id);
    expect(foo.io.engine).to.equal(main.io.engine);
  });

  it("connects to every namespace server.ts registers", async function () {
    for (const nsp of ["/", "/foo", "/timeout_socket", "/valid", "/asd", "/abc"]) {
      const socket = await connect(nsp);
      expect(socket.connected, nsp).to.equal(true);
    }
  });

  for (const transports of [["websocket"], ["polling"]]) {
    it(`refuses an unknown namespace with connect_error "Invalid namespace" (${transports[0]})`, async function () {
      const socket = client("/doesnotexist", { transports });
      const [err] = await once(socket, "connect_error");
      expect(err).to.be.an("error");
      expect(err.message).to.equal("Invalid namespace");
      expect(err.data).to.equal(undefined);
      expect(socket.connected).to.equal(false);
      expect(socket.active).to.equal(false);
    });
  }

  it("keeps the other namespaces of a connection working after an unknown one is refused", async function () {
    const main = await connect("/");
    const bad = main.io.socket("/doesnotexist");
    await once(bad, "connect_error");
    expect(main.connected).to.equal(true);
    expect(await main.emitWithAck("echo", 7)).to.equal(7);
  });
});

describe("handshake and auth", function () {
  it("gives the server the auth object, apart from the query (custom namespace)", async function () {
    const socket = client("/abc", { auth: { a: "b", c: "d", n: 1, nested: { ok: true } } });
    const [raw] = await once(socket, "handshake");
    expect(raw.auth).to.deep.equal({ a: "b", c: "d", n: 1, nested: { ok: true } });
    expect(raw.query.a).to.equal(undefined);
  });

  it("accepts auth given as a function", async function () {
    const socket = client("/abc", { auth: (cb) => cb({ e: "f" }) });
    const [raw] = await once(socket, "handshake");
    expect(raw.auth).to.deep.equal({ e: "f" });
    expect(raw.query.e).to.equal(undefined);
  });

  it("gives the server the query object, properly encoded", async function () {
    const socket = client("/abc", { query: { a: "b", "&a": "&=?a" } });
    const [raw] = await once(socket, "handshake");
    expect(raw.query.a).to.equal("b");
    expect(raw.query["&a"]).to.equal("&=?a");
    expect(raw.query.EIO).to.equal("4");
    expect(raw.query.transport).to.be.oneOf(["polling", "websocket"]);
  });

  it("gives the server a query string of the URL (main namespace)", async function () {
    const socket = await connect("/?c=d");
    const handshake = await socket.emitWithAck("getHandshake");
    expect(handshake.query.c).to.equal("d");
  });

  it("exposes a complete handshake: headers, time, address, xdomain, secure, issued, url, query, auth", async function () {
    const before = Date.now();
    const socket = await connect("/", {
      transports: ["websocket"],
      auth: { token: "abc" },
      query: { q: "1" },
      extraHeaders: { "x-custom": "yes" },
    });
    const h = await socket.emitWithAck("getHandshake");
    expect(h.auth).to.deep.equal({ token: "abc" });
    expect(h.query.q).to.equal("1");
    expect(h.headers).to.be.an("object");
    expect(h.headers.host).to.match(/^127\.0\.0\.1:\d+$/);
    expect(h.headers["x-custom"]).to.equal("yes");
    expect(h.time).to.be.a("string");
    expect(Number.isNaN(Date.parse(h.time))).to.equal(false);
    expect(h.address).to.be.a("string").and.match(/127\.0\.0\.1/);
    expect(h.xdomain).to.equal(false);
    expect(h.secure).to.equal(false);
    expect(h.issued).to.be.a("number");
    expect(h.issued).to.be.within(before - 1000, Date.now() + 1000);
    expect(h.url).to.be.a("string").and.match(/^\/socket\.io\/\?/);
    expect(h.url).to.include("EIO=4");
  });

  it("sends a fresh handshake for a namespace joined later on the same connection", async function () {
    const main = await connect("/", { auth: { who: "main" } });
    const abc = main.io.socket("/abc", { auth: { who: "abc" } });
    const [raw] = await once(abc, "handshake");
    expect(raw.auth).to.deep.equal({ who: "abc" });
  });
});

describe("middleware", function () {
  it("fails the main namespace with the middleware's message and no data", async function () {
    const socket = client("/", { query: { fail: true } });
    const [err] = await once(socket, "connect_error");
    expect(err).to.be.an("error");
    expect(err.message).to.equal("Auth failed (main namespace)");
    expect(err.data).to.equal(undefined);
    expect(socket.connected).to.equal(false);
  });

  it("fails a custom namespace with the middleware's message", async function () {
    const socket = client("/no");
    const [err] = await once(socket, "connect_error");
    expect(err.message).to.equal("Auth failed (custom namespace)");
    expect(err.data).to.equal(undefined);
  });

  it("does not retry after a middleware failure, even with reconnection on", async function () {
    const socket = client("/no", { reconnection: true, reconnectionDelay: 10 });
    let count = 0;
    socket.on("connect_error", () => {
      count++;
      socket.io.engine.close(); // would trigger a reconnection if the socket were still active
    });
    await sleep(300);
    expect(count).to.equal(1);
    expect(socket.active).to.equal(false);
  });

  it("lets the main namespace middleware pass without ?fail", async function () {
    const socket = await connect("/");
    expect(await socket.emitWithAck("echo", "passed")).to.equal("passed");
  });

  // EXTRA namespace /jstest-auth (see reference-server.js)
  it("carries the error's data in connect_error (no auth)", async function () {
    const socket = client("/jstest-auth");
    const [err] = await once(socket, "connect_error");
    expect(err.message).to.equal("unauthorized");
    expect(err.data).to.deep.equal({ code: 401, token: null });
  });

  it("carries the error's data in connect_error (wrong token, from the auth payload)", async function () {
    const socket = client("/jstest-auth", { auth: { token: "nope" } });
    const [err] = await once(socket, "connect_error");
    expect(err.message).to.equal("unauthorized");
    expect(err.data).to.deep.equal({ code: 401, token: "nope" });
  });

  it("connects with the right token and keeps what the middleware stored", async function () {
    const socket = await connect("/jstest-auth", { auth: { token: "secret" } });
    expect(await socket.emitWithAck("whoami")).to.equal("alice");
  });

  it("refuses one namespace without disturbing the others on the same connection", async function () {
    const main = await connect("/");
    const no = main.io.socket("/no");
    const bad = main.io.socket("/jstest-auth", { auth: { token: "x" } });
    await Promise.all([once(no, "connect_error"), once(bad, "connect_error")]);
    expect(main.connected).to.equal(true);
    expect(await main.emitWithAck("echo", 1)).to.equal(1);
    // the same namespace socket, retried with the right token, gets in on the same connection
    bad.auth = { token: "secret" };
    bad.connect();
    await connected(bad);
    expect(bad.io.engine).to.equal(main.io.engine);
    expect(await bad.emitWithAck("whoami")).to.equal("alice");
    await never(main, "disconnect", 100);
  });
});

describe("events on a custom namespace", function () {
  it("routes acks to the namespace they belong to", async function () {
    const foo = await connect("/foo");
    expect(await foo.emitWithAck("getId")).to.equal(foo.id);
    // "/foo" has no "echo": no answer
    await foo
      .timeout(200)
      .emitWithAck("echo", 1)
      .then(
        () => expect.fail("/foo answered an event it does not handle"),
        (err) => expect(err.message).to.equal("operation has timed out"),
      );
  });

  it("handshake event arrives with the recovery offset like every event", async function () {
    const socket = client("/abc");
    const args = await once(socket, "handshake");
    await connected(socket);
    expect(withoutOffset(socket, args)).to.have.length(1);
  });
});
