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
	// MessageKeysCollection records the optional client key (clientMessageId) of sent messages, so that
	// a message the client sends again after a lost ack is stored once (see MessageKey).
	MessageKeysCollection = "message_keys"
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

// MessageKey claims a sender's clientMessageId for one message. Its _id is MessageKeyID(sender, key):
// the unique _id index makes the claim atomic across server nodes without transactions (FerretDB v1).
// It is written before the message, with the message's id and time chosen up front, so that a retry
// that finds the key but not the message stores that same message (same id), and a message insert that
// meets a duplicate _id was already stored. ContentHash (SHA-256 of contentType, NUL, content) lets a
// retry with other content be refused even when the message itself is missing.
type MessageKey struct {
	ID          string        `bson:"_id"`
	SenderID    bson.ObjectID `bson:"senderId"`
	ChatID      string        `bson:"chatId"`
	MessageID   bson.ObjectID `bson:"messageId"`
	ContentHash string        `bson:"contentHash"`
	CreatedAt   time.Time     `bson:"createdAt"`
}

// MessageKeyID is the _id of a MessageKey: sender id (hex) + "|" + clientMessageId.
func MessageKeyID(senderID bson.ObjectID, clientMessageID string) string {
	return senderID.Hex() + "|" + clientMessageID
}

func init() {
	// Keys are read and claimed by the implicit unique _id index. The createdAt index makes EnsureIndexes
	// create the collection at the first start (not by the first keyed messages, concurrently on several
	// nodes) and orders keys by age for a future pruning; keys are kept as long as messages are today.
	RegisterIndexes(MessageKeysCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "createdAt", Value: 1}}, Options: options.Index().SetName("created")})
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
