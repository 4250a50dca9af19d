// Rooms and broadcasts with several clients, through the EXTRA namespace "/jstest" (see
// reference-server.js): "join", "leave", "rooms", "broadcast" {event, args, to, except, self, volatile}.

import { expect } from "chai";
import { connect, connected, once, never, sleep, withoutOffset } from "./support/util.js";

const ws = { transports: ["websocket"] };
const polling = { transports: ["polling"] };

/** n sockets on /jstest; alternate websocket and polling clients so both kinds receive broadcasts. */
async function clients(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await connect("/jstest", i % 2 === 0 ? ws : polling));
  return out;
}

/**
 * Registers listeners for `event` on every socket, runs `fn`, waits `settle` ms, and returns how
 * many times each socket got the event, with the arguments of the last one (offset dropped).
 */
async function deliveries(sockets, event, fn, settle = 300) {
  const got = sockets.map(() => ({ count: 0, args: null }));
  const listeners = sockets.map((s, i) => {
    const l = (...args) => {
      got[i].count++;
      got[i].args = args;
    };
    s.on(event, l);
    return l;
  });
  await fn();
  await sleep(settle);
  sockets.forEach((s, i) => s.off(event, listeners[i]));
  return got;
}

const counts = (got) => got.map((g) => g.count);

describe("rooms and broadcasts (/jstest)", function () {
  it("joins and leaves rooms; a socket is always in the room of its own id", async function () {
    const [a] = await clients(1);
    expect((await a.emitWithAck("rooms")).sort()).to.deep.equal([a.id]);
    expect((await a.emitWithAck("join", "r1")).sort()).to.deep.equal([a.id, "r1"].sort());
    expect((await a.emitWithAck("join", ["r2", "r3"])).sort()).to.deep.equal([a.id, "r1", "r2", "r3"].sort());
    expect((await a.emitWithAck("leave", "r2")).sort()).to.deep.equal([a.id, "r1", "r3"].sort());
    expect((await a.emitWithAck("leave", "not-joined")).sort()).to.deep.equal([a.id, "r1", "r3"].sort());
  });

  it("broadcasts from a socket to everyone else in the namespace, sender excluded", async function () {
    const [a, b, c] = await clients(3);
    const got = await deliveries([a, b, c], "news", () =>
      a.emitWithAck("broadcast", { event: "news", args: ["hello", { n: 1 }] }),
    );
    expect(counts(got)).to.deep.equal([0, 1, 1]);
    expect(withoutOffset(b, got[1].args)).to.deep.equal(["hello", { n: 1 }]);
    expect(withoutOffset(c, got[2].args)).to.deep.equal(["hello", { n: 1 }]);
  });

  it("broadcasts from the namespace to everyone, sender included", async function () {
    const [a, b, c] = await clients(3);
    const got = await deliveries([a, b, c], "all", () => a.emitWithAck("broadcast", { event: "all", self: true }));
    expect(counts(got)).to.deep.equal([1, 1, 1]);
  });

  it("broadcasts to a room: members get it, the sender and non-members do not", async function () {
    const [a, b, c, d] = await clients(4);
    for (const s of [a, b, c]) await s.emitWithAck("join", "room1");
    const got = await deliveries([a, b, c, d], "r", () =>
      a.emitWithAck("broadcast", { event: "r", args: [1], to: ["room1"] }),
    );
    expect(counts(got)).to.deep.equal([0, 1, 1, 0]);
  });

  it("broadcasts to a union of rooms once per socket", async function () {
    const [a, b, c, d] = await clients(4);
    await b.emitWithAck("join", ["x", "y"]);
    await c.emitWithAck("join", "x");
    await d.emitWithAck("join", "y");
    const got = await deliveries([a, b, c, d], "u", () => a.emitWithAck("broadcast", { event: "u", to: ["x", "y"] }));
    expect(counts(got)).to.deep.equal([0, 1, 1, 1]);
  });

  it("excludes the sockets of the except rooms (To + Except)", async function () {
    const [a, b, c, d] = await clients(4);
    await b.emitWithAck("join", ["game", "muted"]);
    await c.emitWithAck("join", "game");
    await d.emitWithAck("join", "muted");
    const got = await deliveries([a, b, c, d], "e", () =>
      a.emitWithAck("broadcast", { event: "e", to: ["game"], except: ["muted"], self: true }),
    );
    expect(counts(got)).to.deep.equal([0, 0, 1, 0]);
  });

  it("excludes rooms from a broadcast to everyone (Except only)", async function () {
    const [a, b, c] = await clients(3);
    await c.emitWithAck("join", "quiet");
    const got = await deliveries([a, b, c], "e2", () => a.emitWithAck("broadcast", { event: "e2", except: ["quiet"] }));
    expect(counts(got)).to.deep.equal([0, 1, 0]);
  });

  it("sends to one socket through the room of its id", async function () {
    const [a, b, c] = await clients(3);
    const got = await deliveries([a, b, c], "dm", () =>
      a.emitWithAck("broadcast", { event: "dm", args: ["psst"], to: [c.id] }),
    );
    expect(counts(got)).to.deep.equal([0, 0, 1]);
    expect(withoutOffset(c, got[2].args)).to.deep.equal(["psst"]);
  });

  it("includes the sender in a namespace broadcast to a room it is in", async function () {
    const [a, b] = await clients(2);
    await a.emitWithAck("join", "both");
    await b.emitWithAck("join", "both");
    const got = await deliveries([a, b], "both", () => a.emitWithAck("broadcast", { event: "both", to: ["both"], self: true }));
    expect(counts(got)).to.deep.equal([1, 1]);
  });

  it("stops delivering a room's broadcasts after leave", async function () {
    const [a, b, c] = await clients(3);
    await b.emitWithAck("join", "tmp");
    await c.emitWithAck("join", "tmp");
    await c.emitWithAck("leave", "tmp");
    const got = await deliveries([a, b, c], "t", () => a.emitWithAck("broadcast", { event: "t", to: ["tmp"] }));
    expect(counts(got)).to.deep.equal([0, 1, 0]);
  });

  it("keeps broadcasts inside their namespace", async function () {
    const [a, b] = await clients(2);
    const mainOfB = b.io.socket("/"); // connects by itself (autoConnect)
    await connected(mainOfB);
    const other = await connect("/", ws);
    const leak1 = never(mainOfB, "ns", 300);
    const leak2 = never(other, "ns", 300);
    const got = await deliveries([b], "ns", () => a.emitWithAck("broadcast", { event: "ns", self: true }));
    expect(counts(got)).to.deep.equal([1]);
    await Promise.all([leak1, leak2]);
  });

  it("broadcasts binary to every member, over websocket and polling", async function () {
    const [a, b, c] = await clients(3);
    await b.emitWithAck("join", "bin");
    await c.emitWithAck("join", "bin");
    const got = await deliveries([a, b, c], "bin", () =>
      a.emitWithAck("broadcast", { event: "bin", args: [{ payload: Buffer.from("bytes"), n: 2 }], to: ["bin"] }),
    );
    expect(counts(got)).to.deep.equal([0, 1, 1]);
    for (const [i, s] of [[1, b], [2, c]]) {
      const [obj] = withoutOffset(s, got[i].args);
      expect(obj.n).to.equal(2);
      expect(Buffer.from(obj.payload).toString()).to.equal("bytes");
    }
  });

  it("delivers every broadcast to every member when many are sent at once", async function () {
    const [a, b, c] = await clients(3);
    await b.emitWithAck("join", "burst");
    await c.emitWithAck("join", "burst");
    const seen = { b: [], c: [] };
    b.on("burst", (n) => seen.b.push(n));
    c.on("burst", (n) => seen.c.push(n));
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => a.emitWithAck("broadcast", { event: "burst", args: [i], to: ["burst"] })),
    );
    await sleep(300);
    const want = Array.from({ length: 50 }, (_, i) => i);
    expect(seen.b).to.deep.equal(want);
    expect(seen.c).to.deep.equal(want);
  });

  it("broadcasts to a room of 30 clients, each getting it once", async function () {
    this.timeout(20000);
    const sockets = await Promise.all(
      Array.from({ length: 30 }, (_, i) => connect("/jstest", i % 3 === 0 ? polling : ws)),
    );
    await Promise.all(sockets.map((s) => s.emitWithAck("join", "crowd")));
    const [sender] = sockets;
    const got = await deliveries(sockets, "crowd", () =>
      sender.emitWithAck("broadcast", { event: "crowd", args: ["all of you"], to: ["crowd"] }),
    );
    expect(counts(got)).to.deep.equal([0, ...Array(29).fill(1)]);
  });

  it("cleans the rooms of a socket that disconnects", async function () {
    const [a, b, c] = await clients(3);
    await b.emitWithAck("join", "gone");
    await c.emitWithAck("join", "gone");
    b.disconnect();
    await sleep(100);
    const got = await deliveries([a, c], "g", () => a.emitWithAck("broadcast", { event: "g", to: ["gone"] }));
    expect(counts(got)).to.deep.equal([0, 1]);
  });
});

describe("volatile (/jstest)", function () {
  it("delivers a volatile broadcast to connected clients, without a recovery offset", async function () {
    const [a, b, c] = await clients(3);
    const got = await deliveries([a, b, c], "vol", () =>
      a.emitWithAck("broadcast", { event: "vol", args: ["v", 1], volatile: true }),
    );
    expect(counts(got)).to.deep.equal([0, 1, 1]);
    // volatile packets are not kept for recovery, so they carry no offset: the args are exact
    expect(got[1].args).to.deep.equal(["v", 1]);
    expect(got[2].args).to.deep.equal(["v", 1]);
  });

  it("delivers a volatile emit to the sender itself", async function () {
    const [a] = await clients(1);
    const got = await deliveries([a], "self-vol", () =>
      a.emitWithAck("broadcast", { event: "self-vol", args: [true], to: [a.id], self: true, volatile: true }),
    );
    expect(counts(got)).to.deep.equal([1]);
    expect(got[0].args).to.deep.equal([true]);
  });
});
