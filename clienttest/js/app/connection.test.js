// Handshake authentication, presence to friends and notifications, with real socket.io-client 4.x.

import { expect } from "chai";
import { newUser, newUsers, befriend, call } from "./support/api.js";
import { connectAs, connectError, client, connected, waitFor, expectNone, disconnect } from "./support/sockets.js";
import { tokenFor, signToken } from "./support/jwt.js";

describe("connection: handshake authentication", () => {
  it("refuses a handshake without a token: 'Authentication error: Token missing'", async () => {
    const err = await connectError({});
    expect(err.message).to.equal("Authentication error: Token missing");
  });

  it("refuses a malformed token: 'Authentication error: Invalid token'", async () => {
    const err = await connectError({ auth: { token: "not-a-jwt" } });
    expect(err.message).to.equal("Authentication error: Invalid token");
  });

  it("refuses a token signed with another secret", async () => {
    const u = await newUser("sec");
    const forged = signToken({ id: u.id, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600 },
      "some-other-secret-of-enough-length");
    const err = await connectError({ auth: { token: forged } });
    expect(err.message).to.equal("Authentication error: Invalid token");
  });

  it("refuses an expired token", async () => {
    const u = await newUser("exp");
    const err = await connectError({ auth: { token: tokenFor(u.id, -30) } });
    expect(err.message).to.equal("Authentication error: Invalid token");
  });

  it("refuses a valid token of a user that does not exist: 'Authentication error: User not found'", async () => {
    const err = await connectError({ auth: { token: tokenFor("0123456789abcdef01234567") } });
    expect(err.message).to.equal("Authentication error: User not found");
  });

  it("accepts the REST access token in auth.token", async () => {
    const u = await newUser("ok");
    const s = await connectAs(u);
    expect(s.connected).to.equal(true);
  });

  it("accepts the token in the query when auth has none", async () => {
    const u = await newUser("q");
    const s = await connected(client({ query: { token: u.token } }, u.username));
    expect(s.connected).to.equal(true);
  });

  it("accepts a token signed the documents' way ({ id } claims, same secret)", async () => {
    const u = await newUser("doc");
    const s = await connected(client({ auth: { token: tokenFor(u.id) } }, u.username));
    expect(s.connected).to.equal(true);
  });
});

describe("connection: presence", () => {
  it("tells a friend user:status online on connect, the chosen status, and offline after the last socket", async () => {
    const [alice, bob] = await newUsers(["pa", "pb"]);
    await befriend(alice, bob);
    const bobS = await connectAs(bob);
    const isAlice = (status) => (p) => p && p.userId === alice.id && p.status === status;

    const a1 = await connectAs(alice);
    const online = await waitFor(bobS, "user:status", 3000, isAlice("online"));
    expect(online).to.include.keys("userId", "status", "updatedAt");
    expect(Number.isNaN(Date.parse(online.updatedAt))).to.equal(false);

    // a second socket of alice: she is already online, nothing new for bob
    const a2 = await connectAs(alice);
    await expectNone(bobS, "user:status", 300, (p) => p && p.userId === alice.id);

    a1.emit("user:status", { status: "busy" });
    await waitFor(bobS, "user:status", 3000, isAlice("busy"));

    // closing one of two sockets keeps her present; the last one makes her offline
    await disconnect(a1);
    await expectNone(bobS, "user:status", 300, isAlice("offline"));
    await disconnect(a2);
    await waitFor(bobS, "user:status", 3000, isAlice("offline"));
    const profile = await call("GET", `/api/users/${alice.id}`, { token: bob.token });
    expect(profile.status).to.equal("offline");
    expect(profile.lastActive).to.be.a("string");
  });

  it("does not tell strangers", async () => {
    const [alice, carol] = await newUsers(["ps", "pc"]);
    const carolS = await connectAs(carol);
    await connectAs(alice);
    await expectNone(carolS, "user:status", 300, (p) => p && p.userId === alice.id);
  });

  it("answers VALIDATION_ERROR to an unknown status", async () => {
    const u = await newUser("pv");
    const s = await connectAs(u);
    s.emit("user:status", { status: "sleeping" });
    const err = await waitFor(s, "error");
    expect(err.code).to.equal("VALIDATION_ERROR");
    expect(err.message).to.be.a("string").and.not.equal("");
  });
});

describe("connection: notifications", () => {
  it("sends notification:new and notification:count to the addressee of a friend request", async () => {
    const [alice, bob] = await newUsers(["na", "nb"]);
    // the welcome notification of bob's registration is created asynchronously: let it land first so
    // that the unread counts below are exact
    const before = await settledUnread(bob);
    const bobS = await connectAs(bob);
    const req = await call("POST", "/api/friends/requests", { token: alice.token, body: { userId: bob.id } });
    expect(req.status).to.equal("pending");

    const isFriendRequest = (p) => p && p.notification && p.notification.type === "friend_request";
    const n = await waitFor(bobS, "notification:new", 3000, isFriendRequest);
    expect(n.notification).to.include.keys("id", "type", "title", "message", "data", "createdAt");
    expect(n.notification.title).to.be.a("string").and.not.equal("");

    const count = await waitFor(bobS, "notification:count", 3000, (p) => p && p.unread === before + 1);
    expect(count).to.include.keys("total", "unread", "unreadCount");
    expect(count.unreadCount).to.equal(count.unread);

    // reading it sends a new count with one unread less
    await call("PATCH", `/api/notifications/${n.notification.id}/read`, { token: bob.token });
    const after = await waitFor(bobS, "notification:count", 3000, (p) => p && p.unread === before);
    expect(after.unreadCount).to.equal(before);
  });
});

// Unread notifications of `u` once the welcome notification is stored (polls up to 3 s).
async function settledUnread(u) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const list = await call("GET", "/api/notifications?status=unread&limit=50", { token: u.token });
    if (list.some((x) => x.type === "welcome") || Date.now() > deadline) return list.length;
    await new Promise((r) => setTimeout(r, 50));
  }
}
