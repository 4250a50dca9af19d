package models

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Chat and message collections (EVENTS.md, Chat). The services of issue 4 own the queries; this file
// fixes the document shapes and indexes so they exist from the first start.
const (
	ChatsCollection    = "chats"
	MessagesCollection = "messages"
)

// Chat types.
const (
	ChatDirect = "direct"
	ChatLobby  = "lobby"
)

// Message content types.
const (
	ContentText  = "text"
	ContentEmoji = "emoji"
	ContentGIF   = "gif"
)

// LobbyChatID is the id of a lobby's chat ("lobby:<lobbyId>").
func LobbyChatID(lobbyID string) string { return "lobby:" + lobbyID }

// Chat is a direct chat (two participants) or a lobby chat. IDs are strings: a direct chat has a hex
// ObjectID, a lobby chat is "lobby:<lobbyId>". Key is unique: the sorted participant pair for a
// direct chat (so it is created once), the chat id for a lobby chat. Per-user read state lives in a
// map keyed by user id (FerretDB v1 has no positional updates into arrays).
//
// For a lobby chat, Participants are the users who joined the chat or were active lobby members when
// a message was sent (so the chat shows up in their chat list); access is still decided by the lobby.
// Notified marks the users who already hold an unread-message notification for this chat: one per
// chat until they read it (services/chat claims the flag with a conditional update, read clears it).
type Chat struct {
	ID            string               `bson:"_id"`
	Type          string               `bson:"type"`
	Key           string               `bson:"key"`
	Participants  []bson.ObjectID      `bson:"participants"`
	LobbyID       *bson.ObjectID       `bson:"lobbyId,omitempty"`
	LastMessageAt *time.Time           `bson:"lastMessageAt,omitempty"`
	LastMessageID *bson.ObjectID       `bson:"lastMessageId,omitempty"`
	LastRead      map[string]ReadState `bson:"lastRead,omitempty"`
	Notified      map[string]bool      `bson:"notified,omitempty"`
	CreatedAt     time.Time            `bson:"createdAt"`
	UpdatedAt     time.Time            `bson:"updatedAt"`
	Version       int64                `bson:"version"`
}

// ReadState is how far one user has read a chat: every message ordered (createdAt, _id) at or before
// (At, MessageID) is read. MessageID is zero when the user read a chat that had no message yet.
type ReadState struct {
	At        time.Time     `bson:"at"`
	MessageID bson.ObjectID `bson:"messageId"`
}

// CurrentVersion implements Versioned.
func (c *Chat) CurrentVersion() int64 { return c.Version }

// Message is one chat message.
type Message struct {
	ID          bson.ObjectID `bson:"_id"`
	ChatID      string        `bson:"chatId"`
	SenderID    bson.ObjectID `bson:"senderId"`
	Content     string        `bson:"content"`
	ContentType string        `bson:"contentType"`
	CreatedAt   time.Time     `bson:"createdAt"`
}

func init() {
	RegisterIndexes(ChatsCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("key_unique")},
		mongo.IndexModel{Keys: bson.D{{Key: "participants", Value: 1}, {Key: "lastMessageAt", Value: -1}},
			Options: options.Index().SetName("participant_recent")},
	)
	RegisterIndexes(MessagesCollection,
		// History newest first with a (createdAt, _id) keyset cursor.
		mongo.IndexModel{Keys: bson.D{{Key: "chatId", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}},
			Options: options.Index().SetName("chat_created")},
	)
}
