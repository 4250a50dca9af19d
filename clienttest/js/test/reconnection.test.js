// What the client does when the server drops it: "io server disconnect" is final (no automatic
// reconnection), a transport close is not (the Manager reconnects). Uses the EXTRA "/jstest" events
// "server-disconnect" and "close-transport".

import { expect } from "chai";
import { client, connect, connected, once, never, sleep, TRANSPORT_MODES } from "./support/util.js";

const reconnecting = { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50, randomizationFactor: 0 };

for (const [mode, opts] of Object.entries(TRANSPORT_MODES)) {
  describe(`reconnection (${mode})`, function () {
    it('does not reconnect after the server disconnects the socket ("io server disconnect")', async function () {
      const socket = await connect("/jstest", { ...opts, ...reconnecting });
      const disconnected = once(socket, "disconnect");
      socket.emit("server-disconnect");
      const [reason] = await disconnected;
      expect(reason).to.equal("io server disconnect");
      expect(socket.connected).to.equal(false);
      expect(socket.active).to.equal(false);
      await never(socket, "connect", 400);
    });

    it("connects again by hand after a server disconnect, as a new socket", async function () {
      const socket = await connect("/jstest", { ...opts, ...reconnecting });
      const firstId = socket.id;
      socket.emit("server-disconnect");
      await once(socket, "disconnect");
      socket.connect();
      await connected(socket);
      expect(socket.id).to.be.a("string").and.not.equal(firstId);
      expect(socket.recovered).to.equal(false);
      expect(await socket.emitWithAck("rooms")).to.deep.equal([socket.id]);
    });

    it("keeps the connection's other namespaces after a server disconnect of one", async function () {
      const main = await connect("/", { ...opts, ...reconnecting });
      const js = main.io.socket("/jstest"); // connects by itself (autoConnect)
      await connected(js);
      js.emit("server-disconnect");
      await once(js, "disconnect");
      await sleep(100);
      expect(main.connected).to.equal(true);
      expect(await main.emitWithAck("echo", "alive")).to.equal("alive");
    });

    it('reconnects after the server closes the transport ("transport close")', async function () {
      const socket = await connect("/jstest", { ...opts, ...reconnecting });
      const disconnected = once(socket, "disconnect");
      const reconnected = once(socket.io, "reconnect", 5000);
      socket.emit("close-transport");
      const [reason] = await disconnected;
      expect(reason).to.equal("transport close");
      expect(socket.active).to.equal(true);
      await reconnected;
      await connected(socket);
      expect(await socket.emitWithAck("rooms")).to.include(socket.id);
    });

    it("reconnects after the client's transport is closed (as if the network dropped)", async function () {
      const socket = await connect("/", { ...opts, ...reconnecting });
      const disconnected = once(socket, "disconnect");
      socket.io.engine.close();
      const [reason] = await disconnected;
      expect(reason).to.equal("forced close"); // the client's own name for a close it made itself
      expect(socket.active).to.equal(true);
      await once(socket, "connect", 5000);
      expect(await socket.emitWithAck("echo", "back")).to.equal("back");
    });

    it("gives a new id after a transport close when no packet was received (nothing to recover)", async function () {
      const socket = await connect("/jstest", { ...opts, ...reconnecting });
      const id = socket.id;
      socket.io.engine.close();
      await once(socket, "connect", 5000);
      expect(socket.recovered).to.equal(false);
      expect(socket.id).to.not.equal(id);
    });
  });
}

describe("reconnection attempts", function () {
  it("fires reconnect_attempt and reconnect on the Manager", async function () {
    const socket = await connect("/", { transports: ["websocket"], ...reconnecting });
    const events = [];
    socket.io.on("reconnect_attempt", (n) => events.push(["attempt", n]));
    socket.io.on("reconnect", (n) => events.push(["reconnect", n]));
    socket.io.engine.close();
    await once(socket.io, "reconnect", 5000);
    expect(events).to.deep.equal([
      ["attempt", 1],
      ["reconnect", 1],
    ]);
  });

  it("keeps emits made while disconnected and sends them after reconnecting", async function () {
    const socket = await connect("/", { transports: ["websocket"], ...reconnecting });
    socket.io.engine.close();
    expect(socket.connected).to.equal(false);
    const reply = socket.emitWithAck("echo", "buffered");
    await once(socket, "connect", 5000);
    expect(await reply).to.equal("buffered");
  });

  it("reports connect_error with a timeout when the server is slower than the client's timeout", async function () {
    // server.ts delays every handshake by 10 ms (allowRequest)
    const socket = client("/", { transports: ["websocket"], timeout: 0 });
    const [err] = await once(socket, "connect_error");
    expect(err.message).to.equal("timeout");
  });
});
