// Scenes the lobby and chat tests start from.

import { newUsers, createLobby } from "./api.js";
import { connectAs, waitForWith } from "./sockets.js";

/** Emits lobby:join and waits for lobby:joined. */
export async function joinLobbyRoom(socket, lobbyId) {
  socket.emit("lobby:join", { lobbyId });
  return waitForWith(socket, "lobby:joined", "lobbyId", lobbyId);
}

/** Emits chat:join and waits for chat:joined. */
export async function joinChatRoom(socket, chatId) {
  socket.emit("chat:join", { chatId });
  return waitForWith(socket, "chat:joined", "chatId", chatId);
}

/**
 * A party-trivia lobby (capacity 2..8) hosted by the first of fresh users named by `tags`, the others
 * members over REST; each user connected, and (unless told otherwise) in the lobby room and the lobby
 * chat room, one after the other like the documents' test.
 */
export async function lobbyScene(tags, { lobbyRoom = true, chatRoom = true, body = {} } = {}) {
  const users = await newUsers(tags);
  const lobby = await createLobby(users[0], users.slice(1), body);
  const lobbyId = lobby.id;
  const chatId = `lobby:${lobbyId}`;
  const sockets = [];
  for (const u of users) sockets.push(await connectAs(u));
  for (const s of sockets) {
    if (lobbyRoom) await joinLobbyRoom(s, lobbyId);
    if (chatRoom) await joinChatRoom(s, chatId);
  }
  return { users, sockets, lobby, lobbyId, chatId };
}

export const isoTime = (s) => typeof s === "string" && !Number.isNaN(Date.parse(s));
