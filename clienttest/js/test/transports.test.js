// Engine.IO transports as socket.io-client uses them: websocket only, long-polling only, and
// long-polling upgraded to websocket.

import { expect } from "chai";
import { client, connect, connected, once, collect, sleep, withoutOffset } from "./support/util.js";

describe("transports", function () {
  describe("websocket only", function () {
    it("connects over websocket without any polling request and exchanges events", async function () {
      const socket = client("/", { transports: ["websocket"] });
      const transports = [];
      socket.io.on("open", () => transports.push(socket.io.engine.transport.name));
      await connected(socket);
      expect(transports).to.deep.equal(["websocket"]);
      expect(socket.io.engine.transport.name).to.equal("websocket");
      expect(await socket.emitWithAck("echo", "over ws")).to.equal("over ws");
      socket.emit("hi");
      const args = await once(socket, "hi");
      expect(withoutOffset(socket, args)).to.deep.equal([]);
    });

    it("announces server.ts's heartbeat settings in the handshake and pings every 2 s", async function () {
      this.timeout(6000);
      const socket = await connect("/", { transports: ["websocket"] });
      const engine = socket.io.engine;
      expect(engine._pingInterval).to.equal(2000);
      expect(engine._pingTimeout).to.equal(20000);
      expect(engine._maxPayload).to.equal(1000000);
      const t0 = Date.now();
      await once(engine, "ping", 4000);
      expect(Date.now() - t0).to.be.below(2600);
      expect(socket.connected).to.equal(true);
    });
  });

  describe("polling only", function () {
    it("connects over long-polling and never upgrades", async function () {
      const socket = await connect("/", { transports: ["polling"] });
      expect(socket.io.engine.transport.name).to.equal("polling");
      expect(await socket.emitWithAck("echo", "over polling")).to.equal("over polling");
      await sleep(300);
      expect(socket.io.engine.transport.name).to.equal("polling");
    });

    it("delivers many packets sent at once (one payload) in order", async function () {
      const socket = await connect("/", { transports: ["polling"] });
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) => socket.emitWithAck("echo", { i, s: "x".repeat(i) })),
      );
      expect(replies.map((r) => r.i)).to.deep.equal(Array.from({ length: 40 }, (_, i) => i));
      socket.emit("getUtf8");
      const got = await collect(socket, "takeUtf8", 5);
      expect(got.map((a) => withoutOffset(socket, a)[0])).to.deep.equal([
        "てすと",
        "Я Б Г Д Ж Й",
        "Ä ä Ü ü ß",
        "utf8 — string",
        "utf8 — string",
      ]);
    });

    it("answers pings while polling", async function () {
      this.timeout(6000);
      const socket = await connect("/", { transports: ["polling"] });
      await once(socket.io.engine, "ping", 4000);
      expect(await socket.emitWithAck("echo", 1)).to.equal(1);
    });
  });

  describe("polling upgraded to websocket", function () {
    it("starts with polling, offers the websocket upgrade and upgrades", async function () {
      const socket = client("/", { transports: ["polling", "websocket"] });
      let atOpen = null;
      const upgraded = [];
      socket.io.on("open", () => {
        const engine = socket.io.engine;
        atOpen = { transport: engine.transport.name, upgrades: engine._upgrades };
        engine.on("upgrade", (t) => upgraded.push(t.name));
      });
      await connected(socket); // waits for the upgrade too
      expect(atOpen).to.deep.equal({ transport: "polling", upgrades: ["websocket"] });
      expect(upgraded).to.deep.equal(["websocket"]);
      expect(socket.io.engine.transport.name).to.equal("websocket");
      expect(await socket.emitWithAck("echo", "after upgrade")).to.equal("after upgrade");
    });

    it("loses no packet in either direction while the upgrade is in progress", async function () {
      const socket = client("/", { transports: ["polling", "websocket"] });
      const acks = [];
      const pending = [];
      let i = 0;
      // emit continuously from before the connection until well after the upgrade
      const timer = setInterval(() => {
        const n = i++;
        pending.push(socket.emitWithAck("echo", n).then((v) => acks.push(v)));
        socket.emit("hi");
      }, 5);
      let his = 0;
      socket.on("hi", () => his++);
      await connected(socket);
      expect(socket.io.engine.transport.name).to.equal("websocket");
      await sleep(100);
      clearInterval(timer);
      await Promise.all(pending);
      expect(i).to.be.above(10);
      expect(acks).to.deep.equal(Array.from({ length: i }, (_, n) => n));
      await sleep(100);
      expect(his).to.equal(i);
    });
  });

  describe("maxPayload", function () {
    // Node: the websocket is closed (client reason "transport close"); the oversized POST is
    // refused with HTTP 413 (client reason "transport error").
    for (const [transports, want] of [
      [["websocket"], "transport close"],
      [["polling"], "transport error"],
    ]) {
      it(`accepts a message just under 1e6 bytes over ${transports[0]}`, async function () {
        const socket = await connect("/", { transports });
        const big = "a".repeat(900000);
        expect(await socket.timeout(5000).emitWithAck("echo", big)).to.equal(big);
      });

      it(`closes the connection on a message over 1e6 bytes over ${transports[0]}`, async function () {
        const socket = await connect("/", { transports });
        const disconnected = once(socket, "disconnect", 5000);
        socket.emit("echo", "a".repeat(1100000), () => {});
        const [reason] = await disconnected;
        expect(reason).to.equal(want);
      });
    }
  });
});
