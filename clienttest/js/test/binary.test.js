// Binary payloads (Buffer, ArrayBuffer, typed arrays), alone and mixed into nested JSON, in both
// directions and in acks; run over every transport mode.

import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { connect, once, withoutOffset, TRANSPORT_MODES } from "./support/util.js";

// What the client receives may be a Buffer (websocket, Node) or an ArrayBuffer (base64 in polling,
// depending on binaryType): compare bytes.
function bytes(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new Error(`not binary: ${JSON.stringify(v)}`);
}

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

for (const [mode, opts] of Object.entries(TRANSPORT_MODES)) {
  describe(`binary (${mode})`, function () {
    it("receives a Buffer from the server (doge, getbin)", async function () {
      const socket = await connect("/", opts);
      socket.emit("doge");
      const [doge] = withoutOffset(socket, await once(socket, "doge"));
      expect(isBinary(doge)).to.equal(true);
      expect(bytes(doge).toString("utf8")).to.equal("asdfasdf");
      socket.emit("getbin");
      const [bin] = withoutOffset(socket, await once(socket, "takebin"));
      expect(bytes(bin).toString("utf8")).to.equal("asdfasdf");
    });

    it("sends a Buffer, an ArrayBuffer and a Uint8Array that the server sees as binary", async function () {
      const socket = await connect("/", opts);
      socket.emit("buffa", Buffer.from("buffer"));
      await once(socket, "buffack");
      socket.emit("buffa", new Uint8Array([1, 2, 3]));
      await once(socket, "buffack");
      socket.emit("blob", new Uint8Array([4, 5, 6]).buffer);
      await once(socket, "back");
    });

    it("sends binary mixed with JSON (jsonbuff, jsonblob)", async function () {
      const socket = await connect("/", opts);
      socket.emit("jsonbuff", { hello: "lol", message: Buffer.from("look at me"), goodbye: "gotcha" });
      await once(socket, "jsonbuff-ack");
      socket.emit("jsonblob", { hello: "lol", message: new Uint8Array([1, 2]).buffer, goodbye: "gotcha" });
      await once(socket, "jsonblob-ack");
    });

    it("keeps binary and text events in order (abuff1/abuff2, blob1/blob2/blob3)", async function () {
      const socket = await connect("/", opts);
      socket.emit("abuff1", Buffer.from("first"));
      socket.emit("abuff2", Buffer.from("second"));
      await once(socket, "abuff2-ack");
      socket.emit("blob1", Buffer.from("first"));
      socket.emit("blob2", "second");
      socket.emit("blob3", new Uint8Array([3]).buffer);
      await once(socket, "blob3-ack");
    });

    it("round-trips a Buffer through an ack (binary event up, binary ack down)", async function () {
      const socket = await connect("/", opts);
      const data = randomBytes(1024);
      const back = await socket.emitWithAck("echo", data);
      expect(bytes(back).equals(data)).to.equal(true);
    });

    it("round-trips an ArrayBuffer and an empty buffer", async function () {
      const socket = await connect("/", opts);
      const ab = new Uint8Array([0, 1, 254, 255]).buffer;
      expect([...bytes(await socket.emitWithAck("echo", ab))]).to.deep.equal([0, 1, 254, 255]);
      expect(bytes(await socket.emitWithAck("echo", Buffer.alloc(0))).length).to.equal(0);
    });

    it("round-trips binary mixed into nested objects and arrays", async function () {
      const socket = await connect("/", opts);
      const a = randomBytes(16);
      const b = randomBytes(300);
      const c = new Uint8Array([9, 8, 7]).buffer;
      const sent = {
        name: "mixed",
        list: [a, "text", { inner: b, n: 1 }, [c, null]],
        deep: { deeper: { bin: Buffer.from("deep") } },
        plain: [1, 2, 3],
      };
      const got = await socket.emitWithAck("echo", sent);
      expect(got.name).to.equal("mixed");
      expect(got.plain).to.deep.equal([1, 2, 3]);
      expect(bytes(got.list[0]).equals(a)).to.equal(true);
      expect(got.list[1]).to.equal("text");
      expect(got.list[2].n).to.equal(1);
      expect(bytes(got.list[2].inner).equals(b)).to.equal(true);
      expect([...bytes(got.list[3][0])]).to.deep.equal([9, 8, 7]);
      expect(got.list[3][1]).to.equal(null);
      expect(bytes(got.deep.deeper.bin).toString()).to.equal("deep");
    });

    it("round-trips several attachments in one packet, in placeholder order", async function () {
      const socket = await connect("/", opts);
      const parts = Array.from({ length: 5 }, (_, i) => Buffer.from(`part-${i}`));
      const got = await socket.emitWithAck("echo", parts);
      expect(got.map((p) => bytes(p).toString())).to.deep.equal(parts.map((p) => p.toString()));
    });

    it("round-trips a large (256 KiB) random buffer", async function () {
      const socket = await connect("/", opts);
      const data = randomBytes(256 * 1024);
      const back = await socket.timeout(5000).emitWithAck("echo", data);
      expect(bytes(back).equals(data)).to.equal(true);
    });

    it("does not treat a JSON object shaped like a placeholder as binary when no attachment comes", async function () {
      const socket = await connect("/", opts);
      // in a plain text EVENT (type 2) an object shaped like a placeholder is ordinary data: Node
      // does not reconstruct it and echoes it unchanged in a text ACK
      const fake = { _placeholder: true, num: 0 };
      expect(await socket.emitWithAck("echo", fake)).to.deep.equal(fake);
    });

    // EXTRA "/jstest" "ask": binary in a server-initiated ack, both directions
    it("sends binary in a server emit with ack and answers it with binary", async function () {
      const socket = await connect("/jstest", opts);
      socket.on("bin-question", (buf, cb) => {
        cb({ got: bytes(buf).toString(), reply: Buffer.from("answer") });
      });
      const res = await socket.emitWithAck("ask", {
        event: "bin-question",
        args: [Buffer.from("question")],
        timeout: 2000,
      });
      expect(res.ok).to.equal(true);
      expect(res.replies[0].got).to.equal("question");
      // the reply went up as a BINARY_ACK; the "ask" handler relays what the server API returned.
      // Node hands the handler a Buffer (relayed as binary); the Go API documents that
      // EmitWithAck returns binary reply values as base64 JSON strings, so the relay cannot tell
      // them from text. Either way the bytes must be exactly those the client sent.
      const reply = res.replies[0].reply;
      const replyBytes = typeof reply === "string" ? Buffer.from(reply, "base64") : bytes(reply);
      expect(replyBytes.toString()).to.equal("answer");
    });
  });
}
