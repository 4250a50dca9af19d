// Matchmaking through REST and Socket.IO (EVENTS.md "Matchmaking") against a fast matcher: rounds
// every 100 ms, status every 500 ms, any skill after 1 s, expiry after 5 s (support/server.js).
// Each test searches in its own region so that tests never match each other's users.

import { expect } from "chai";
import { newUser, newUsers, call, api } from "./support/api.js";
import { connectAs, waitFor, waitForWith, expectNone, emitAck } from "./support/sockets.js";
import { joinLobbyRoom, joinChatRoom, isoTime } from "./support/fixtures.js";
import { MATCH_MAX_SEARCH_MS, MATCH_STATUS_INTERVAL_MS } from "./support/server.js";

let regionSeq = 0;
const region = () => `test-${process.pid}-${++regionSeq}`;
const hasCode = (code) => (p) => p && p.code === code;
const STATUS_KEYS = ["requestId", "status", "searchTimeElapsed", "estimatedWaitTime", "currentRelaxationLevel", "potentialMatchesFound"];

// Ends a search a test no longer needs; it may have expired meanwhile on a slow machine (409).
async function done(user, id) {
  const res = await api("DELETE", `/api/matchmaking/${id}`, { token: user.token });
  expect([200, 409], JSON.stringify(res.body)).to.include(res.status);
}

async function search(user, reg, extra = {}) {
  const res = await api("POST", "/api/matchmaking", {
    token: user.token,
    body: { gameId: "arena-shooter", gameMode: "1v1", region: reg, skill: 1000, ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  expect(res.body.data).to.include({ status: "searching" });
  expect(isoTime(res.body.data.createdAt)).to.equal(true);
  expect(res.body.data.matchRequestId).to.be.a("string").and.not.equal("");
  return res.body.data.matchRequestId;
}

describe("matchmaking: matched", () => {
  it("matches two users into the same lobby (matchmaking:matched with the same lobbyId), chat included", async () => {
    const reg = region();
    const [alice, bob] = await newUsers(["mma", "mmb"]);
    const [as, bs] = [await connectAs(alice), await connectAs(bob)];

    const ra = await search(alice, reg, { skill: 1000 });
    const sub = await emitAck(as, "matchmaking:subscribe", { requestId: ra });
    expect(sub.ok, JSON.stringify(sub)).to.equal(true);
    const first = await waitForWith(as, "matchmaking:status", "requestId", ra);
    expect(first).to.include.keys(...STATUS_KEYS);
    expect(first.status).to.be.oneOf(["searching", "relaxing_criteria"]);

    const rb = await search(bob, reg, { skill: 1040 });
    bs.emit("matchmaking:subscribe", { matchRequestId: rb }); // the planning notes' key; may race the match
    const ma = await waitForWith(as, "matchmaking:matched", "requestId", ra, 5000);
    const mb = await waitForWith(bs, "matchmaking:matched", "requestId", rb, 5000);
    expect(ma.lobbyId).to.be.a("string").and.not.equal("");
    expect(mb.lobbyId).to.equal(ma.lobbyId);
    expect(isoTime(ma.matchedAt) && isoTime(mb.matchedAt)).to.equal(true);
    // exactly one match each
    await expectNone(as, "matchmaking:matched", 300);
    await expectNone(bs, "matchmaking:matched", 0);

    const lobby = await call("GET", `/api/lobbies/${ma.lobbyId}`, { token: bob.token });
    expect(lobby.gameId).to.equal("arena-shooter");
    expect(lobby.members.filter((m) => m.status === "joined").map((m) => m.userId)).to.have.members([alice.id, bob.id]);
    for (const [u, id] of [[alice, ra], [bob, rb]]) {
      const req = await call("GET", `/api/matchmaking/${id}`, { token: u.token });
      expect(req.status).to.equal("matched");
    }

    // both land in the lobby and its chat
    const chatId = `lobby:${ma.lobbyId}`;
    for (const s of [as, bs]) {
      await joinLobbyRoom(s, ma.lobbyId);
      await joinChatRoom(s, chatId);
    }
    await emitAck(bs, "chat:message", { chatId, content: "gg in advance" });
    const got = await waitFor(as, "chat:message", 3000, (p) => p && p.message && p.message.content === "gg in advance");
    expect(got.message.sender.id).to.equal(bob.id);

    // sitting in an open lobby: no new search
    const again = await api("POST", "/api/matchmaking", {
      token: alice.token, body: { gameId: "arena-shooter", gameMode: "1v1", region: reg, skill: 1000 },
    });
    expect(again.status).to.equal(409);
    expect(again.body.error.code).to.equal("CONFLICT");
  });

  it("refuses a second search of the same user with 409", async () => {
    const u = await newUser("mmd");
    const id = await search(u, region());
    const dup = await api("POST", "/api/matchmaking", {
      token: u.token, body: { gameId: "arena-shooter", gameMode: "1v1", region: region(), skill: 1000 },
    });
    expect(dup.status).to.equal(409);
    await done(u, id);
  });

  it("answers VALIDATION_ERROR (400) to an unknown game or mode or a bad body", async () => {
    const u = await newUser("mmv");
    for (const body of [
      { gameId: "no-such-game", gameMode: "1v1", region: region() },
      { gameId: "arena-shooter", gameMode: "7v7", region: region() },
      { gameId: "arena-shooter", gameMode: "1v1" },
      { gameId: "arena-shooter", gameMode: "1v1", region: region(), skill: "high" },
    ]) {
      const res = await api("POST", "/api/matchmaking", { token: u.token, body });
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body.error.code).to.equal("VALIDATION_ERROR");
    }
  });
});

describe("matchmaking: cancel", () => {
  it("cancels over the socket: matchmaking:cancelled, then CANCEL_ERROR and SUBSCRIPTION_ERROR for the finished request", async () => {
    const u = await newUser("mc");
    const s = await connectAs(u);
    const id = await search(u, region());
    await emitAck(s, "matchmaking:subscribe", { requestId: id });
    s.emit("matchmaking:cancel", { requestId: id });
    const c = await waitForWith(s, "matchmaking:cancelled", "requestId", id);
    expect(isoTime(c.cancelledAt), JSON.stringify(c)).to.equal(true);
    const req = await call("GET", `/api/matchmaking/${id}`, { token: u.token });
    expect(req.status).to.equal("cancelled");

    const again = await emitAck(s, "matchmaking:cancel", { requestId: id });
    expect(again.ok).to.equal(false);
    expect(again.error.code).to.equal("CANCEL_ERROR");
    const me = await waitFor(s, "matchmaking:error", 3000, hasCode("CANCEL_ERROR"));
    expect(me.requestId).to.equal(id);
    await waitFor(s, "error", 3000, hasCode("CANCEL_ERROR"));

    const sub = await emitAck(s, "matchmaking:subscribe", { requestId: id });
    expect(sub.ok).to.equal(false);
    expect(sub.error.code).to.equal("SUBSCRIPTION_ERROR");

    // free to search again
    const next = await search(u, region());
    await done(u, next);
  });

  it("cancels over REST (DELETE): the socket gets matchmaking:cancelled and the user is never matched", async () => {
    const reg = region();
    const [a, b] = await newUsers(["mr", "ms"]);
    const as = await connectAs(a);
    const id = await search(a, reg);
    const del = await call("DELETE", `/api/matchmaking/${id}`, { token: a.token });
    expect(del.status).to.equal("cancelled");
    await waitForWith(as, "matchmaking:cancelled", "requestId", id);
    // someone else searching in that queue now finds nobody
    const bs = await connectAs(b);
    const idb = await search(b, reg);
    await expectNone(as, "matchmaking:matched", 300);
    await expectNone(bs, "matchmaking:matched", 0);
    await done(b, idb);
  });
});

describe("matchmaking: status and expiry", () => {
  it(`sends matchmaking:status every ${MATCH_STATUS_INTERVAL_MS} ms with growing search time, relaxing the criteria`, async () => {
    const u = await newUser("mt");
    const s = await connectAs(u);
    const id = await search(u, region());
    s.emit("matchmaking:subscribe", { requestId: id });
    const seen = [];
    const t0 = Date.now();
    // relaxation to "any skill" after 1 s: within ~2 s a status says relaxing_criteria
    while (!seen.some((x) => x.status === "relaxing_criteria") && Date.now() - t0 < MATCH_MAX_SEARCH_MS - 500) {
      seen.push(await waitForWith(s, "matchmaking:status", "requestId", id, MATCH_STATUS_INTERVAL_MS * 4));
    }
    for (const st of seen) {
      expect(st).to.include.keys(...STATUS_KEYS);
      expect(st.status).to.be.oneOf(["searching", "relaxing_criteria"]);
      for (const k of ["searchTimeElapsed", "estimatedWaitTime", "currentRelaxationLevel", "potentialMatchesFound"]) {
        expect(st[k], k).to.be.a("number").and.at.least(0);
      }
    }
    expect(seen.length, JSON.stringify(seen)).to.be.at.least(2);
    const elapsed = seen.map((x) => x.searchTimeElapsed);
    expect(elapsed, "searchTimeElapsed never decreases").to.deep.equal([...elapsed].sort((a, b) => a - b));
    expect(elapsed[elapsed.length - 1]).to.be.above(elapsed[0]);
    const last = seen[seen.length - 1];
    expect(last.status, JSON.stringify(seen)).to.equal("relaxing_criteria");
    expect(last.currentRelaxationLevel).to.be.at.least(1);

    await done(u, id);
  });

  it("stops the status updates after matchmaking:unsubscribe", async () => {
    const u = await newUser("mu");
    const s = await connectAs(u);
    const id = await search(u, region());
    await emitAck(s, "matchmaking:subscribe", { requestId: id });
    await waitForWith(s, "matchmaking:status", "requestId", id);
    await waitForWith(s, "matchmaking:status", "requestId", id, MATCH_STATUS_INTERVAL_MS * 4); // periodic
    const ack = await emitAck(s, "matchmaking:unsubscribe", { requestId: id });
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
    // one status may have been on its way; after that, silence for more than an interval
    await waitFor(s, "matchmaking:status", MATCH_STATUS_INTERVAL_MS, () => true).catch(() => {});
    await expectNone(s, "matchmaking:status", MATCH_STATUS_INTERVAL_MS + 300);
    await done(u, id);
  });

  it("expires a request that outlives the maximum search time: matchmaking:expired", async function () {
    this.timeout(MATCH_MAX_SEARCH_MS + 10000);
    const u = await newUser("mx");
    const s = await connectAs(u);
    const id = await search(u, region());
    await emitAck(s, "matchmaking:subscribe", { requestId: id });
    const t0 = Date.now();
    const ex = await waitForWith(s, "matchmaking:expired", "requestId", id, MATCH_MAX_SEARCH_MS + 5000);
    expect(Date.now() - t0).to.be.at.least(MATCH_MAX_SEARCH_MS - 1000);
    expect(isoTime(ex.expiredAt), JSON.stringify(ex)).to.equal(true);
    const req = await call("GET", `/api/matchmaking/${id}`, { token: u.token });
    expect(req.status).to.equal("expired");
    const cancel = await emitAck(s, "matchmaking:cancel", { requestId: id });
    expect(cancel.ok).to.equal(false);
    expect(cancel.error.code).to.equal("CANCEL_ERROR");
  });
});

describe("matchmaking: access", () => {
  it("answers MATCH_NOT_FOUND to another user's or an unknown request, VALIDATION_ERROR without an id", async () => {
    const [owner, other] = await newUsers(["mo", "mp"]);
    const id = await search(owner, region());
    const os = await connectAs(other);
    const sub = await emitAck(os, "matchmaking:subscribe", { requestId: id });
    expect(sub.ok).to.equal(false);
    expect(sub.error.code).to.equal("MATCH_NOT_FOUND");
    const me = await waitFor(os, "matchmaking:error", 3000, hasCode("MATCH_NOT_FOUND"));
    expect(me.requestId).to.equal(id);
    await expectNone(os, "matchmaking:status", 300);

    const cancel = await emitAck(os, "matchmaking:cancel", { requestId: id });
    expect(cancel.ok).to.equal(false);
    expect(cancel.error.code).to.equal("MATCH_NOT_FOUND");
    expect((await api("GET", `/api/matchmaking/${id}`, { token: other.token })).status).to.equal(404);
    expect((await api("DELETE", `/api/matchmaking/${id}`, { token: other.token })).status).to.equal(404);
    expect((await call("GET", `/api/matchmaking/${id}`, { token: owner.token })).status).to.equal("searching");

    const unknown = await emitAck(os, "matchmaking:subscribe", { requestId: "0123456789abcdef01234567" });
    expect(unknown.error.code).to.equal("MATCH_NOT_FOUND");
    const none = await emitAck(os, "matchmaking:subscribe", {});
    expect(none.ok).to.equal(false);
    expect(none.error.code).to.equal("VALIDATION_ERROR");
    await done(owner, id);
  });
});
