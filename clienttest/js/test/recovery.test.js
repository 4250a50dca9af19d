// Connection state recovery (Socket.IO 4.6+; server.ts enables it with the defaults:
// maxDisconnectionDuration 2 min, skipMiddlewares true). After a short disconnection the client
// sends {pid, offset} in its CONNECT; the server restores the id, the rooms and the missed packets.

import { expect } from "chai";
import { connect, connected, once, collect, never, sleep, withoutOffset, TRANSPORT_MODES } from "./support/util.js";

const reconnecting = { reconnection: true, reconnectionDelayMax: 10000, randomizationFactor: 0 };

describe("connection state recovery", function () {
  it("is not recovered on a fresh connection, and the server sends a pid", async function () {
    const socket = await connect("/");
    expect(socket.recovered).to.equal(false);
    expect(socket._pid).to.be.a("string").and.not.equal("");
  });

  it("puts the packet offset as the last argument of every stored event", async function () {
    const socket = await connect("/", { transports: ["websocket"] });
    socket.emit("hi");
    const [hi] = await collect(socket, "hi", 1);
    expect(hi).to.have.length(1);
    expect(hi[0]).to.be.a("string").and.not.equal("");
    socket.emit("hi");
    const [hi2] = await collect(socket, "hi", 1);
    expect(hi2[0]).to.be.a("string").and.not.equal(hi[0]);
    expect(socket._lastOffset).to.equal(hi2[0]);
  });

  for (const [mode, opts] of Object.entries(TRANSPORT_MODES)) {
    describe(mode, function () {
      it("recovers the id after the client's transport closes (server.ts recovery test)", async function () {
        const socket = await connect("/", { ...opts, ...reconnecting, reconnectionDelay: 10 });
        expect(socket.recovered).to.equal(false);
        socket.emit("hi"); // initialises the offset
        await once(socket, "hi");
        const id = socket.id;
        socket.io.engine.close();
        await once(socket, "connect", 5000);
        expect(socket.id).to.equal(id);
        expect(socket.recovered).to.equal(true);
        expect(await socket.emitWithAck("getId")).to.equal(id);
      });

      // EXTRA "/jstest"
      it("recovers the id, the rooms and the missed broadcasts, but not missed volatile ones", async function () {
        this.timeout(10000);
        const a = await connect("/jstest", { ...opts, ...reconnecting, reconnectionDelay: 600 });
        const b = await connect("/jstest", { transports: ["websocket"] });
        await a.emitWithAck("join", "r");
        // one event to a, so it has an offset to resume from
        a.emit("broadcast", { event: "init", to: [a.id], self: true }, () => {});
        await once(a, "init");
        const id = a.id;

        const missed = [];
        a.on("missed", (...args) => missed.push(withoutOffset(a, args)));
        let volatileSeen = 0;
        a.on("missed-volatile", () => volatileSeen++);

        // With polling the client closes only once its last POST is answered (engine.io-client waits
        // for "drain"), so wait for the disconnect instead of expecting it synchronously.
        const gone = once(a, "disconnect");
        a.io.engine.close();
        await gone;
        expect(a.connected).to.equal(false);
        await sleep(150); // let the server notice the close before it broadcasts
        await b.emitWithAck("broadcast", { event: "missed", args: [1], to: ["r"] });
        await b.emitWithAck("broadcast", { event: "missed-volatile", args: [1], to: ["r"], volatile: true });
        await b.emitWithAck("broadcast", { event: "missed", args: [2, { bin: Buffer.from("x") }], to: ["r"] });
        await b.emitWithAck("broadcast", { event: "missed", args: ["everyone"] });
        await b.emitWithAck("broadcast", { event: "not-for-a", args: [0], to: ["other-room"] });
        let notForA = 0;
        a.on("not-for-a", () => notForA++);

        await once(a, "connect", 5000);
        expect(a.recovered).to.equal(true);
        expect(a.id).to.equal(id);
        await sleep(200);
        expect(missed.length).to.equal(3);
        expect(missed[0]).to.deep.equal([1]);
        expect(missed[1][0]).to.equal(2);
        expect(Buffer.from(missed[1][1].bin).toString()).to.equal("x");
        expect(missed[2]).to.deep.equal(["everyone"]);
        expect(volatileSeen).to.equal(0);
        expect(notForA).to.equal(0);
        expect((await a.emitWithAck("rooms")).sort()).to.deep.equal([id, "r"].sort());

        // and live broadcasts to the restored room reach it again
        const live = once(a, "live");
        await b.emitWithAck("broadcast", { event: "live", to: ["r"] });
        await live;
      });

      // EXTRA "/jstest"
      it('recovers after the server closes the transport ("close-transport")', async function () {
        const socket = await connect("/jstest", { ...opts, ...reconnecting, reconnectionDelay: 50 });
        await socket.emitWithAck("join", "kept");
        socket.emit("broadcast", { event: "init", to: [socket.id], self: true }, () => {});
        await once(socket, "init");
        const id = socket.id;
        socket.emit("close-transport");
        const [reason] = await once(socket, "disconnect");
        expect(reason).to.equal("transport close");
        await once(socket, "connect", 5000);
        expect(socket.recovered).to.equal(true);
        expect(socket.id).to.equal(id);
        expect((await socket.emitWithAck("rooms")).sort()).to.deep.equal([id, "kept"].sort());
      });
    });
  }

  it("does not replay packets the client already received", async function () {
    const socket = await connect("/", { transports: ["websocket"], ...reconnecting, reconnectionDelay: 50 });
    let his = 0;
    socket.on("hi", () => his++);
    socket.emit("hi");
    socket.emit("hi");
    await sleep(200);
    expect(his).to.equal(2);
    socket.io.engine.close();
    await once(socket, "connect", 5000);
    expect(socket.recovered).to.equal(true);
    await never(socket, "hi", 300);
    expect(his).to.equal(2);
  });

  it("is not recovered after a server disconnect (not a recoverable reason)", async function () {
    const socket = await connect("/jstest", { transports: ["websocket"] });
    socket.emit("broadcast", { event: "init", to: [socket.id], self: true }, () => {});
    await once(socket, "init");
    const id = socket.id;
    socket.emit("server-disconnect");
    await once(socket, "disconnect");
    socket.connect();
    await connected(socket);
    expect(socket.recovered).to.equal(false);
    expect(socket.id).to.not.equal(id);
  });

  it("is not recovered with an unknown pid", async function () {
    const socket = await connect("/", { transports: ["websocket"], ...reconnecting, reconnectionDelay: 50 });
    socket.emit("hi");
    await once(socket, "hi");
    const id = socket.id;
    socket._pid = "unknown-pid"; // as if the session had expired on the server
    socket.io.engine.close();
    await once(socket, "connect", 5000);
    expect(socket.recovered).to.equal(false);
    expect(socket.id).to.not.equal(id);
  });

  it("is not recovered with an unknown offset", async function () {
    const socket = await connect("/", { transports: ["websocket"], ...reconnecting, reconnectionDelay: 50 });
    socket.emit("hi");
    await once(socket, "hi");
    const id = socket.id;
    socket._lastOffset = "unknown-offset"; // as if the packets had expired on the server
    socket.io.engine.close();
    await once(socket, "connect", 5000);
    expect(socket.recovered).to.equal(false);
    expect(socket.id).to.not.equal(id);
  });

  it("skips the middlewares on recovery (skipMiddlewares), but runs them for a fresh connection", async function () {
    // the main namespace middleware fails when the query has "fail"; the query is sent again on the
    // reconnection, but a recovered session skips the middleware
    const socket = await connect("/", { transports: ["websocket"], ...reconnecting, reconnectionDelay: 50 });
    socket.emit("hi");
    await once(socket, "hi");
    socket.io.opts.query = { fail: "true" };
    socket.io.engine.close();
    await once(socket, "connect", 5000);
    expect(socket.recovered).to.equal(true);
    // a fresh connection with the same query is refused by the middleware
    socket._pid = "unknown-pid";
    socket.io.engine.close();
    const [err] = await once(socket, "connect_error", 5000);
    expect(err.message).to.equal("Auth failed (main namespace)");
  });
});
