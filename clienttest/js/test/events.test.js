// Events and acknowledgements in both directions, with timeouts; run over every transport mode.

import { expect } from "chai";
import { connect, once, collect, never, sleep, withoutOffset, TRANSPORT_MODES } from "./support/util.js";

for (const [mode, opts] of Object.entries(TRANSPORT_MODES)) {
  describe(`events and acks (${mode})`, function () {
    it("emits an event and receives one back", async function () {
      const socket = await connect("/", opts);
      socket.emit("hi");
      const args = await once(socket, "hi");
      expect(withoutOffset(socket, args)).to.deep.equal([]);
    });

    it("gets an ack with the argument echoed, for every JSON type", async function () {
      const socket = await connect("/", opts);
      const values = [
        0,
        -1.5,
        1e21,
        "",
        "a string with \"quotes\", \\ backslash and \n newline",
        "てすと 😀",
        true,
        false,
        null,
        [],
        {},
        [1, "two", { three: [3] }],
        { nested: { deep: { deeper: [null, true, "x"] } }, "key with space": 1 },
      ];
      for (const v of values) {
        expect(await socket.emitWithAck("echo", v)).to.deep.equal(v);
      }
    });

    it("keeps the order of acks of events emitted back to back", async function () {
      const socket = await connect("/", opts);
      const order = [];
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => socket.emitWithAck("echo", i).then((v) => order.push(v))),
      );
      expect(order).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
    });

    it("answers an ack the server asks for (server.ts \"ack\" -> \"got it\")", async function () {
      const socket = await connect("/", opts);
      const gotIt = once(socket, "got it");
      socket.once("ack", (cb) => {
        expect(cb).to.be.a("function");
        cb(5, { test: true });
      });
      socket.emit("ack");
      expect(withoutOffset(socket, await gotIt)).to.deep.equal([]);
    });

    it("fails socket.timeout(ms).emitWithAck when the server never answers", async function () {
      const socket = await connect("/", opts);
      const t0 = Date.now();
      let err = null;
      try {
        await socket.timeout(300).emitWithAck("no-such-event", 1);
      } catch (e) {
        err = e;
      }
      expect(err, "emitWithAck resolved").to.be.an("error");
      expect(err.message).to.equal("operation has timed out");
      expect(Date.now() - t0).to.be.within(250, 2000);
      // the connection is fine afterwards
      expect(await socket.emitWithAck("echo", "ok")).to.equal("ok");
    });

    it("resolves socket.timeout(ms).emitWithAck when the server answers in time", async function () {
      const socket = await connect("/", opts);
      expect(await socket.timeout(2000).emitWithAck("echo", { x: 1 })).to.deep.equal({ x: 1 });
      const err = await new Promise((resolve) => socket.timeout(2000).emit("echo", 42, (e, v) => resolve([e, v])));
      expect(err).to.deep.equal([null, 42]);
    });

    it("receives dates as ISO strings (getAckDate, getDate, getDateObj)", async function () {
      const socket = await connect("/", opts);
      const near = (s) => {
        expect(s).to.be.a("string");
        const t = Date.parse(s);
        expect(Number.isNaN(t), s).to.equal(false);
        expect(Math.abs(Date.now() - t)).to.be.below(5000);
      };
      near(await socket.emitWithAck("getAckDate", {}));
      socket.emit("getDate");
      near(withoutOffset(socket, await once(socket, "takeDate"))[0]);
      socket.emit("getDateObj");
      const [obj] = withoutOffset(socket, await once(socket, "takeDateObj"));
      near(obj.date);
    });

    it("receives UTF-8 strings intact and in order", async function () {
      const socket = await connect("/", opts);
      socket.emit("getUtf8");
      const got = await collect(socket, "takeUtf8", 5);
      expect(got.map((a) => withoutOffset(socket, a))).to.deep.equal([
        ["てすと"],
        ["Я Б Г Д Ж Й"],
        ["Ä ä Ü ü ß"],
        ["utf8 — string"],
        ["utf8 — string"],
      ]);
    });

    it("receives false as an argument", async function () {
      const socket = await connect("/", opts);
      socket.emit("false");
      expect(withoutOffset(socket, await once(socket, "false"))).to.deep.equal([false]);
    });

    // EXTRA "/jstest" "ask": the server emits with an ack and a timeout
    it("answers a server emitWithAck with several values", async function () {
      const socket = await connect("/jstest", opts);
      socket.on("question", (a, b, cb) => cb(a + b, "second", { c: [a, b] }));
      const res = await socket.emitWithAck("ask", { event: "question", args: [2, 3], timeout: 2000 });
      expect(res).to.deep.equal({ ok: true, replies: [5, "second", { c: [2, 3] }] });
    });

    it("makes the server's emitWithAck time out when the client does not answer", async function () {
      const socket = await connect("/jstest", opts);
      let asked = 0;
      socket.on("silent", () => asked++); // no ack
      const t0 = Date.now();
      const res = await socket.emitWithAck("ask", { event: "silent", args: [1], timeout: 300 });
      expect(res.ok).to.equal(false);
      expect(res.error).to.be.a("string").and.not.equal("");
      expect(Date.now() - t0).to.be.within(250, 2500);
      expect(asked).to.equal(1);
    });

    it("makes the server's emitWithAck time out when the client answers too late, and ignores the late answer", async function () {
      const socket = await connect("/jstest", opts);
      socket.on("slow", (cb) => setTimeout(() => cb("late"), 500));
      const res = await socket.emitWithAck("ask", { event: "slow", timeout: 200 });
      expect(res.ok).to.equal(false);
      await sleep(500); // the late ack reaches the server now: it must be dropped quietly
      expect(socket.connected).to.equal(true);
      expect(await socket.emitWithAck("rooms")).to.include(socket.id);
    });

    it("matches concurrent server acks to their requests when the client answers out of order", async function () {
      const socket = await connect("/jstest", opts);
      socket.on("delayed", (ms, tag, cb) => setTimeout(() => cb(tag), ms));
      const results = await Promise.all([
        socket.emitWithAck("ask", { event: "delayed", args: [300, "slow"], timeout: 3000 }),
        socket.emitWithAck("ask", { event: "delayed", args: [10, "fast"], timeout: 3000 }),
        socket.emitWithAck("ask", { event: "delayed", args: [150, "middle"], timeout: 3000 }),
      ]);
      expect(results).to.deep.equal([
        { ok: true, replies: ["slow"] },
        { ok: true, replies: ["fast"] },
        { ok: true, replies: ["middle"] },
      ]);
    });

    it("does not deliver an event to a listener of another name", async function () {
      const socket = await connect("/", opts);
      const unexpected = never(socket, "echo", 300);
      expect(await socket.emitWithAck("echo", "x")).to.equal("x");
      await unexpected;
    });
  });
}
