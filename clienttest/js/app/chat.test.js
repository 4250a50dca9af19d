// Lobby chat and direct chat over Socket.IO (EVENTS.md "Chat"), in the style of the design documents'
// test/integration/chat.test.js.

import { expect } from "chai";
import { newUser, newUsers, call, api } from "./support/api.js";
import { connectAs, waitFor, waitForWith, expectNone, emitAck } from "./support/sockets.js";
import { lobbyScene, joinLobbyRoom, joinChatRoom, isoTime } from "./support/fixtures.js";
import { CHAT_MESSAGE_LIMIT, CHAT_TYPING_LIMIT, CHAT_MAX_JOINED } from "./support/server.js";

const byContent = (content) => (p) => p && p.message && p.message.content === content;
const hasCode = (code) => (p) => p && p.code === code;

describe("chat: lobby chat", () => {
  it("lets members join the lobby and its chat (lobby:joined, lobby:update, chat:joined)", async () => {
    const [host, guest] = await newUsers(["ch", "cg"]);
    const lobby = await call("POST", "/api/lobbies", { token: host.token, body: { gameId: "party-trivia", gameMode: "casual" } });
    await call("POST", `/api/lobbies/${lobby.id}/join`, { token: guest.token });
    const [hs, gs] = [await connectAs(host), await connectAs(guest)];

    hs.emit("lobby:join", { lobbyId: lobby.id });
    const joined = await waitFor(hs, "lobby:joined");
    expect(joined).to.have.property("lobbyId").equal(lobby.id);
    const update = await waitForWith(hs, "lobby:update", "lobbyId", lobby.id);
    expect(update.update).to.include.keys("status", "settings", "members", "capacity", "hostId", "updatedAt");
    expect(update.update.hostId).to.equal(host.id);
    expect(update.update.status).to.equal("forming");
    expect(update.update.capacity).to.deep.equal({ min: 2, max: 8 });
    const members = update.update.members.map((m) => [m.userId, m.isHost, m.status]);
    expect(members).to.deep.include.members([[host.id, true, "joined"], [guest.id, false, "joined"]]);

    hs.emit("chat:join", { chatId: `lobby:${lobby.id}` });
    const chatJoined = await waitFor(hs, "chat:joined");
    expect(chatJoined).to.have.property("chatId").equal(`lobby:${lobby.id}`);

    // the guest's socket joins: the host, already in both rooms, is told
    await joinLobbyRoom(gs, lobby.id);
    const mj = await waitForWith(hs, "lobby:member:joined", "lobbyId", lobby.id);
    expect(mj.user).to.deep.equal({ id: guest.id, username: guest.username, displayName: guest.displayName });
    await joinChatRoom(gs, `lobby:${lobby.id}`);
    const cj = await waitForWith(hs, "chat:member:joined", "chatId", `lobby:${lobby.id}`);
    expect(cj.user).to.include({ id: guest.id, username: guest.username });
    // and the joiner is not told about itself
    await expectNone(gs, "chat:member:joined", 300, (p) => p && p.user && p.user.id === guest.id);
  });

  it("broadcasts a message with sender details to the whole room, sender too, and acks {ok:true, message}", async () => {
    const { users, sockets, chatId } = await lobbyScene(["ma", "mb", "mc"]);
    const [alice] = users;
    const ack = await emitAck(sockets[0], "chat:message", { chatId, content: "Hello, world!", contentType: "text" });
    expect(ack).to.have.property("ok").equal(true);
    expect(ack.message).to.include.keys("id", "sender", "content", "contentType", "createdAt");

    for (const s of sockets) {
      const ev = await waitFor(s, "chat:message", 3000, byContent("Hello, world!"));
      expect(ev).to.have.property("chatId").equal(chatId);
      expect(ev.message.id).to.equal(ack.message.id);
      expect(ev.message.content).to.equal("Hello, world!");
      expect(ev.message.contentType).to.equal("text");
      expect(ev.message.sender).to.deep.equal({ id: alice.id, username: alice.username, displayName: alice.displayName });
      expect(isoTime(ev.message.createdAt), ev.message.createdAt).to.equal(true);
    }
    // exactly once each
    for (const s of sockets) await expectNone(s, "chat:message", 100, byContent("Hello, world!"));

    // stored before broadcast: history has it, newest first
    const history = await call("GET", `/api/chats/${chatId}/messages?limit=10`, { token: users[1].token });
    expect(history[0]).to.include({ id: ack.message.id, content: "Hello, world!" });
  });

  it("serves the history of a lobby chat by its id, also percent-encoded (lobby%3A<id>) as fetch clients send it", async () => {
    const { users, sockets, chatId } = await lobbyScene(["ha", "hb"]);
    const sent = [];
    for (const text of ["one", "two", "three"]) sent.push((await emitAck(sockets[0], "chat:message", { chatId, content: text })).message.id);
    const plain = await call("GET", `/api/chats/${chatId}/messages?limit=2`, { token: users[1].token });
    expect(plain.map((m) => m.content)).to.deep.equal(["three", "two"]);
    const older = await call("GET", `/api/chats/${chatId}/messages?limit=2&before=${sent[1]}`, { token: users[1].token });
    expect(older.map((m) => m.content)).to.deep.equal(["one"]);
    const encoded = await api("GET", `/api/chats/${encodeURIComponent(chatId)}/messages?limit=2`, { token: users[1].token });
    expect(encoded.status, JSON.stringify(encoded.body)).to.equal(200);
    expect(encoded.body.data.map((m) => m.content)).to.deep.equal(["three", "two"]);
  });

  it("defaults contentType to text, accepts emoji and gif URLs", async () => {
    const { sockets, chatId } = await lobbyScene(["ea", "eb"]);
    const plain = await emitAck(sockets[0], "chat:message", { chatId, content: "no type given" });
    expect(plain.ok).to.equal(true);
    expect(plain.message.contentType).to.equal("text");
    const emoji = await emitAck(sockets[0], "chat:message", { chatId, content: "🎉", contentType: "emoji" });
    expect(emoji.ok, JSON.stringify(emoji)).to.equal(true);
    const gif = await emitAck(sockets[0], "chat:message", { chatId, content: "https://media.example.test/party.gif", contentType: "gif" });
    expect(gif.ok, JSON.stringify(gif)).to.equal(true);
    const got = await waitFor(sockets[1], "chat:message", 3000, byContent("https://media.example.test/party.gif"));
    expect(got.message.contentType).to.equal("gif");
  });

  it("answers VALIDATION_ERROR to bad messages and broadcasts nothing", async () => {
    const { sockets, chatId } = await lobbyScene(["va", "vb"]);
    const [s0, s1] = sockets;
    const bad = [
      ["empty content", { chatId, content: "" }],
      ["blank content", { chatId, content: "   \n\t " }],
      ["too long", { chatId, content: "x".repeat(2001) }],
      ["content not a string", { chatId, content: 42 }],
      ["unknown contentType", { chatId, content: "hi", contentType: "video" }],
      ["gif that is not a URL", { chatId, content: "funny cat", contentType: "gif" }],
      ["gif with another scheme", { chatId, content: "javascript:alert(1)", contentType: "gif" }],
      ["no chatId", { content: "where to?" }],
    ];
    for (const [what, payload] of bad) {
      const ack = await emitAck(s0, "chat:message", payload);
      expect(ack, what).to.have.property("ok").equal(false);
      expect(ack.error, what).to.include({ code: "VALIDATION_ERROR" });
      expect(ack.error.message, what).to.be.a("string").and.not.equal("");
      const err = await waitFor(s0, "error", 3000, hasCode("VALIDATION_ERROR"));
      expect(err.message, what).to.be.a("string");
    }
    // a payload that is not an object at all, without an ack
    s0.emit("chat:message", "just a string");
    await waitFor(s0, "error", 3000, hasCode("VALIDATION_ERROR"));
    s0.emit("chat:join", null);
    await waitFor(s0, "error", 3000, hasCode("VALIDATION_ERROR"));
    await expectNone(s1, "chat:message", 300);
    // the connection survived all of it
    const ok = await emitAck(s0, "chat:message", { chatId, content: "still here" });
    expect(ok.ok).to.equal(true);
  });

  it("shows typing indicators to the others only", async () => {
    const { users, sockets, chatId } = await lobbyScene(["ta", "tb", "tc"]);
    sockets[0].emit("chat:typing", { chatId, isTyping: true });
    for (const s of sockets.slice(1)) {
      const ev = await waitForWith(s, "chat:typing", "chatId", chatId);
      expect(ev.user).to.include({ id: users[0].id, username: users[0].username });
      expect(ev).to.have.property("isTyping").equal(true);
    }
    sockets[0].emit("chat:typing", { chatId, isTyping: false });
    const stop = await waitForWith(sockets[1], "chat:typing", "chatId", chatId);
    expect(stop.isTyping).to.equal(false);
    await expectNone(sockets[0], "chat:typing", 300);
  });

  it("sends read receipts (chat:read) to the others and clears the reader's unread count", async () => {
    const { users, sockets, lobbyId, chatId } = await lobbyScene(["ra", "rb"]);
    const [alice, bob] = users;
    const sent = await emitAck(sockets[0], "chat:message", { chatId, content: "did you read this?" });
    await waitFor(sockets[1], "chat:message", 3000, byContent("did you read this?"));

    const summary = async (u) => {
      const chats = await call("GET", "/api/chats", { token: u.token });
      return chats.find((c) => c.id === chatId || c.lobbyId === lobbyId);
    };
    const before = await summary(bob);
    expect(before, "bob's GET /api/chats lists the lobby chat").to.not.equal(undefined);
    expect(before.unreadCount).to.equal(1);
    expect(before.lastMessageAt).to.be.a("string");

    sockets[1].emit("chat:read", { chatId, lastMessageId: sent.message.id });
    const receipt = await waitForWith(sockets[0], "chat:read", "chatId", chatId);
    expect(receipt).to.deep.equal({ chatId, userId: bob.id });
    await expectNone(sockets[1], "chat:read", 300);
    expect((await summary(bob)).unreadCount).to.equal(0);
    // the sender's own message is not unread for her
    expect((await summary(alice)).unreadCount).to.equal(0);
  });

  it("notifies a member who is not in the chat room, once per chat until read", async () => {
    const { users, sockets, lobbyId, chatId } = await lobbyScene(["xa", "xb"]);
    const carol = await newUser("xc");
    await call("POST", `/api/lobbies/${lobbyId}/join`, { token: carol.token });
    const cs = await connectAs(carol); // connected, but not in the chat room
    await emitAck(sockets[0], "chat:message", { chatId, content: "first" });
    await emitAck(sockets[0], "chat:message", { chatId, content: "second" });
    const isChat = (p) => p && p.notification && p.notification.type === "chat_message";
    const n = await waitFor(cs, "notification:new", 3000, isChat);
    expect(n.notification.data).to.be.an("object");
    await expectNone(cs, "notification:new", 300, isChat);
    // not in the room: no broadcast for carol, a notification instead
    await expectNone(cs, "chat:message", 0);
    // reading the chat re-arms the notification for the next unread message
    await joinChatRoom(cs, chatId);
    cs.emit("chat:read", { chatId });
    await waitFor(sockets[0], "chat:read", 3000, (p) => p && p.userId === carol.id);
    cs.emit("chat:leave", { chatId });
    await waitFor(sockets[0], "chat:member:left", 3000, (p) => p && p.user && p.user.id === carol.id);
    await emitAck(sockets[0], "chat:message", { chatId, content: "third" });
    await waitFor(cs, "notification:new", 3000, isChat);
  });

  it("stops delivering to a socket after chat:leave, tells the others, and answers NOT_IN_CHAT", async () => {
    const { users, sockets, chatId } = await lobbyScene(["la", "lb"]);
    sockets[1].emit("chat:leave", { chatId });
    const left = await waitForWith(sockets[0], "chat:member:left", "chatId", chatId);
    expect(left.user).to.include({ id: users[1].id, username: users[1].username });
    await emitAck(sockets[0], "chat:message", { chatId, content: "anyone?" });
    await expectNone(sockets[1], "chat:message", 300);
    const ack = await emitAck(sockets[1], "chat:message", { chatId, content: "I left" });
    expect(ack).to.deep.include({ ok: false });
    expect(ack.error.code).to.equal("NOT_IN_CHAT");
    await waitFor(sockets[1], "error", 3000, hasCode("NOT_IN_CHAT"));
  });
});

describe("chat: access", () => {
  it("refuses an outsider's chat:join of a lobby chat with ACCESS_DENIED", async () => {
    const { sockets, chatId } = await lobbyScene(["oa", "ob"]);
    const outsider = await newUser("oo");
    const os = await connectAs(outsider);
    os.emit("chat:join", { chatId });
    const err = await waitFor(os, "error", 3000, hasCode("ACCESS_DENIED"));
    expect(err.message).to.be.a("string").and.not.equal("");
    await expectNone(os, "chat:joined", 100);
    await expectNone(sockets[0], "chat:member:joined", 300, (p) => p && p.user && p.user.id === outsider.id);

    // nor can it write there or watch typing
    const ack = await emitAck(os, "chat:message", { chatId, content: "let me in" });
    expect(ack.ok).to.equal(false);
    expect(ack.error.code).to.equal("NOT_IN_CHAT");
    await expectNone(sockets[1], "chat:message", 300);
    const history = await api("GET", `/api/chats/${chatId}/messages`, { token: outsider.token });
    expect(history.status).to.equal(403);
    expect(history.body.error.code).to.equal("FORBIDDEN");
  });

  it("answers CHAT_NOT_FOUND for a chat that does not exist", async () => {
    const u = await newUser("nf");
    const s = await connectAs(u);
    const ack = await emitAck(s, "chat:join", { chatId: "lobby:0123456789abcdef01234567" });
    expect(ack.ok).to.equal(false);
    expect(ack.error.code).to.equal("CHAT_NOT_FOUND");
    await waitFor(s, "error", 3000, hasCode("CHAT_NOT_FOUND"));
    s.emit("chat:join", { chatId: "0123456789abcdef01234567" });
    await waitFor(s, "error", 3000, hasCode("CHAT_NOT_FOUND"));
  });

  it("answers NOT_IN_CHAT to a member who has not joined the chat room", async () => {
    const { sockets, chatId } = await lobbyScene(["ja", "jb"], { chatRoom: false });
    const ack = await emitAck(sockets[0], "chat:message", { chatId, content: "too early" });
    expect(ack.ok).to.equal(false);
    expect(ack.error.code).to.equal("NOT_IN_CHAT");
    await expectNone(sockets[1], "chat:message", 300);
  });

  it("creates a direct chat once per pair and lets only its two participants in", async () => {
    const [alice, bob, eve] = await newUsers(["da", "db", "de"]);
    const chat = await call("POST", "/api/chats/direct", { token: alice.token, body: { userId: bob.id } });
    const again = await call("POST", "/api/chats/direct", { token: bob.token, body: { userId: alice.id } });
    expect(again.id).to.equal(chat.id);
    expect(chat.type).to.equal("direct");

    const [as, bs, es] = [await connectAs(alice), await connectAs(bob), await connectAs(eve)];
    await joinChatRoom(as, chat.id);
    await joinChatRoom(bs, chat.id);
    es.emit("chat:join", { chatId: chat.id });
    await waitFor(es, "error", 3000, hasCode("ACCESS_DENIED"));

    const ack = await emitAck(as, "chat:message", { chatId: chat.id, content: "psst" });
    expect(ack.ok).to.equal(true);
    const got = await waitFor(bs, "chat:message", 3000, byContent("psst"));
    expect(got.chatId).to.equal(chat.id);
    await expectNone(es, "chat:message", 300);
  });
});

describe("chat: clientMessageId", () => {
  it("answers a resent message (same clientMessageId, as socket.io-client's retries resend it) with the first, stored and broadcast once", async () => {
    const { users, sockets, chatId } = await lobbyScene(["ka", "kb"]);
    const payload = { chatId, content: "only once", clientMessageId: "c0ffee-1" };
    const first = await emitAck(sockets[0], "chat:message", payload);
    expect(first.ok, JSON.stringify(first)).to.equal(true);
    const again = await emitAck(sockets[0], "chat:message", payload);
    expect(again).to.deep.equal(first);
    // the sender's new connection, not in the chat room yet (a reconnect before the rejoin)
    const later = await connectAs(users[0]);
    expect(await emitAck(later, "chat:message", payload)).to.deep.equal(first);

    for (const s of sockets) await waitFor(s, "chat:message", 3000, byContent("only once"));
    for (const s of sockets) await expectNone(s, "chat:message", 300, byContent("only once"));
    const history = await call("GET", `/api/chats/${chatId}/messages`, { token: users[1].token });
    expect(history.filter((m) => m.content === "only once").map((m) => m.id)).to.deep.equal([first.message.id]);

    // the other member's same key is another message; a used key with other content is refused
    const theirs = await emitAck(sockets[1], "chat:message", payload);
    expect(theirs.ok).to.equal(true);
    expect(theirs.message.id).to.not.equal(first.message.id);
    const changed = await emitAck(sockets[0], "chat:message", { ...payload, content: "edited" });
    expect(changed.ok).to.equal(false);
    expect(changed.error.code).to.equal("MESSAGE_ERROR");
    const bad = await emitAck(sockets[0], "chat:message", { chatId, content: "x", clientMessageId: "not ok!" });
    expect(bad.ok).to.equal(false);
    expect(bad.error.code).to.equal("VALIDATION_ERROR");
    expect(bad.error.message).to.contain("clientMessageId");
  });
});

describe("chat: rate limit", () => {
  it(`answers RATE_LIMITED past ${CHAT_MESSAGE_LIMIT} messages per window, and stores and broadcasts nothing`, async () => {
    const { users, sockets, chatId } = await lobbyScene(["rl", "rm"]);
    for (let i = 0; i < CHAT_MESSAGE_LIMIT; i++) {
      const ack = await emitAck(sockets[0], "chat:message", { chatId, content: `burst ${i}` });
      expect(ack.ok, `message ${i}: ${JSON.stringify(ack)}`).to.equal(true);
    }
    const over = await emitAck(sockets[0], "chat:message", { chatId, content: "one too many" });
    expect(over.ok).to.equal(false);
    expect(over.error.code).to.equal("RATE_LIMITED");
    const err = await waitFor(sockets[0], "error", 3000, hasCode("RATE_LIMITED"));
    expect(err.message).to.be.a("string").and.not.equal("");

    for (let i = 0; i < CHAT_MESSAGE_LIMIT; i++) await waitFor(sockets[1], "chat:message", 3000, byContent(`burst ${i}`));
    await expectNone(sockets[1], "chat:message", 300, byContent("one too many"));
    await expectNone(sockets[0], "chat:message", 0, byContent("one too many"));
    const history = await call("GET", `/api/chats/${chatId}/messages?limit=50`, { token: users[1].token });
    expect(history.map((m) => m.content)).to.not.include("one too many");
    expect(history).to.have.length(CHAT_MESSAGE_LIMIT);

    // the limit is per user: the other member can still talk
    const other = await emitAck(sockets[1], "chat:message", { chatId, content: "my turn" });
    expect(other.ok).to.equal(true);
  });
});

describe("chat: more limits", () => {
  it(`answers RATE_LIMITED past ${CHAT_TYPING_LIMIT} typing indicators per window, broadcasting none past it`, async () => {
    const { sockets, chatId } = await lobbyScene(["tl", "tm"]);
    for (let i = 0; i < CHAT_TYPING_LIMIT; i++) {
      const ack = await emitAck(sockets[0], "chat:typing", { chatId, isTyping: i % 2 === 0 });
      expect(ack.ok, `typing ${i}: ${JSON.stringify(ack)}`).to.equal(true);
    }
    for (let i = 0; i < CHAT_TYPING_LIMIT; i++) await waitForWith(sockets[1], "chat:typing", "chatId", chatId);
    const over = await emitAck(sockets[0], "chat:typing", { chatId, isTyping: true });
    expect(over.ok).to.equal(false);
    expect(over.error.code).to.equal("RATE_LIMITED");
    await waitFor(sockets[0], "error", 3000, hasCode("RATE_LIMITED"));
    await expectNone(sockets[1], "chat:typing", 300);
  });

  it(`answers JOIN_ERROR past ${CHAT_MAX_JOINED} chat rooms on one connection`, async () => {
    const me = await newUser("jm");
    const others = await newUsers(Array.from({ length: CHAT_MAX_JOINED + 1 }, (_, i) => `jo${i}`));
    const chats = [];
    for (const o of others) chats.push(await call("POST", "/api/chats/direct", { token: me.token, body: { userId: o.id } }));
    const s = await connectAs(me);
    for (const c of chats.slice(0, CHAT_MAX_JOINED)) await joinChatRoom(s, c.id);
    const ack = await emitAck(s, "chat:join", { chatId: chats[CHAT_MAX_JOINED].id });
    expect(ack.ok).to.equal(false);
    expect(ack.error.code).to.equal("JOIN_ERROR");
    await waitFor(s, "error", 3000, hasCode("JOIN_ERROR"));
    // leaving one makes room again
    s.emit("chat:leave", { chatId: chats[0].id });
    await joinChatRoom(s, chats[CHAT_MAX_JOINED].id);
  });

  it("stores a notification for an offline participant of a direct chat", async () => {
    const [alice, bob] = await newUsers(["oa", "ob"]);
    const chat = await call("POST", "/api/chats/direct", { token: alice.token, body: { userId: bob.id } });
    const as = await connectAs(alice);
    await joinChatRoom(as, chat.id);
    const ack = await emitAck(as, "chat:message", { chatId: chat.id, content: "are you there?" });
    expect(ack.ok).to.equal(true);
    // bob is offline: the notification is stored; poll until it is (the event is handled asynchronously)
    const deadline = Date.now() + 3000;
    let found;
    while (!found && Date.now() < deadline) {
      const list = await call("GET", "/api/notifications?status=unread", { token: bob.token });
      found = list.find((n) => n.type === "chat_message");
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    expect(found, "bob has an unread chat_message notification").to.not.equal(undefined);
    const summary = (await call("GET", "/api/chats", { token: bob.token })).find((c) => c.id === chat.id);
    expect(summary.unreadCount).to.equal(1);
  });
});
