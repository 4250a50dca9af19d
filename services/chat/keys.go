package chat

// Idempotent sends with a client key (clientMessageId), like Slack's client_msg_id or Matrix's txnId:
// a client that sends a message again because its ack was lost (timeout, reconnect, socket.io-client's
// `retries`) gets the first message back instead of a second copy.
//
// The key is claimed in its own collection (models.MessageKey, _id = sender id + "|" + key) before the
// message is stored, with the message's id and time chosen up front. The unique _id decides between
// concurrent sends on any node; no transaction and no positional update is needed (FerretDB v1). The
// orders a failure can leave, and what a retry with the same key does:
//
//   - nothing stored: it is a new send;
//   - key stored, message not (its insert failed, or its outcome is unknown and it did not happen):
//     the retry stores the message with the recorded id and time and delivers it (broadcast, event);
//   - key and message stored: the retry answers the stored message; nothing is stored or broadcast.
//     If the message insert reported an error although it was written, that message was never
//     broadcast, and the retry does not broadcast it either: it is in the history.
//
// Two retries racing each other meet on the message's _id: one stores and delivers, the other answers
// the stored message.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
)

// MaxClientMessageIDLen bounds clientMessageId.
const MaxClientMessageIDLen = 64

// CheckClientMessageID validates a client's message key: 1 to 64 characters of [A-Za-z0-9_-].
func CheckClientMessageID(id string) error {
	const what = "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"
	if id == "" || len(id) > MaxClientMessageIDLen {
		return errs.Validation("clientMessageId "+what, map[string]string{"clientMessageId": what})
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return errs.Validation("clientMessageId "+what, map[string]string{"clientMessageId": what})
		}
	}
	return nil
}

// keyReused refuses a key that names another message (other chat, content or type).
func keyReused() error {
	return errs.New(errs.CodeMessageError,
		"clientMessageId was already used for a different message: use a new clientMessageId for a new message").
		WithDetails(map[string]any{"fields": map[string]any{"clientMessageId": "was already used for a different message"}})
}

// contentHash identifies a message's validated content and type in its key.
func contentHash(content, contentType string) string {
	h := sha256.New()
	h.Write([]byte(contentType))
	h.Write([]byte{0})
	h.Write([]byte(content))
	return hex.EncodeToString(h.Sum(nil))
}

// keyed is a validated keyed send.
type keyed struct {
	id                   string // models.MessageKey _id
	sender               bson.ObjectID
	chatID               string
	content, contentType string
	hash                 string
}

func (s *Service) checkKeyed(sender UserRef, chatID, content, contentType, clientMessageID string) (*keyed, error) {
	content, contentType, err := s.ValidateMessage(content, contentType)
	if err != nil {
		return nil, err
	}
	if err := CheckClientMessageID(clientMessageID); err != nil {
		return nil, err
	}
	if err := CheckChatID(chatID); err != nil {
		return nil, err
	}
	sid, ok := models.ParseID(sender.ID)
	if !ok {
		return nil, accessDenied()
	}
	return &keyed{id: models.MessageKeyID(sid, clientMessageID), sender: sid, chatID: chatID, content: content,
		contentType: contentType, hash: contentHash(content, contentType)}, nil
}

// loadKey reads a key; nil when it was never claimed.
func (s *Service) loadKey(ctx context.Context, id string) (*models.MessageKey, error) {
	var k models.MessageKey
	if err := s.keys.FindOne(ctx, bson.M{"_id": id}).Decode(&k); err != nil {
		if models.IsNoDocuments(err) {
			return nil, nil
		}
		return nil, errs.Internal(err)
	}
	return &k, nil
}

// storedFor returns the message a claimed key names, nil when it is not stored; a key claimed for
// another chat or content is MESSAGE_ERROR.
func (s *Service) storedFor(ctx context.Context, k *models.MessageKey, in *keyed) (*models.Message, error) {
	if k.ChatID != in.chatID || k.ContentHash != in.hash {
		return nil, keyReused()
	}
	var m models.Message
	if err := s.messages.FindOne(ctx, bson.M{"_id": k.MessageID}).Decode(&m); err != nil {
		if models.IsNoDocuments(err) {
			return nil, nil
		}
		return nil, errs.Internal(err)
	}
	return &m, nil
}

// Sent answers a resend without storing or broadcasting anything: the message sender already sent
// with clientMessageID, when it is stored; nil when the key is new or its message is not stored yet
// (then SendOnce stores it). It checks no access: the answer is the sender's own stored message, and a
// client resending after a reconnect may not be back in the chat's room yet. Errors: VALIDATION_ERROR
// (content, chat id, key), MESSAGE_ERROR (the key names another message), INTERNAL.
func (s *Service) Sent(ctx context.Context, sender UserRef, chatID, content, contentType, clientMessageID string) (*MessageView, error) {
	in, err := s.checkKeyed(sender, chatID, content, contentType, clientMessageID)
	if err != nil {
		return nil, err
	}
	k, err := s.loadKey(ctx, in.id)
	if err != nil || k == nil {
		return nil, err
	}
	m, err := s.storedFor(ctx, k, in)
	if err != nil || m == nil {
		return nil, err
	}
	v := messageView(sender, m)
	return &v, nil
}

// SendOnce is Send with an optional client key (clientMessageID, "" for none: exactly Send). The first
// send with a key stores and delivers the message; a later one by the same sender with the same key,
// chat and content answers that message (resent reports true) and stores and broadcasts nothing. The
// same key from another sender is another message. Errors as Send, plus VALIDATION_ERROR for a bad key
// and MESSAGE_ERROR for a key already used for another chat or content.
func (s *Service) SendOnce(ctx context.Context, sender UserRef, chatID, content, contentType, clientMessageID string) (view *MessageView, resent bool, err error) {
	if clientMessageID == "" {
		content, contentType, err := s.ValidateMessage(content, contentType)
		if err != nil {
			return nil, false, err
		}
		c, err := s.Access(ctx, chatID, sender.ID)
		if err != nil {
			return nil, false, err
		}
		sid, _ := models.ParseID(sender.ID)
		msg := s.newMessage(chatID, sid, content, contentType)
		if _, err := s.messages.InsertOne(ctx, msg); err != nil {
			return nil, false, errs.Internal(err)
		}
		return s.deliver(ctx, sender, c, msg), false, nil
	}
	in, err := s.checkKeyed(sender, chatID, content, contentType, clientMessageID)
	if err != nil {
		return nil, false, err
	}
	c, err := s.Access(ctx, chatID, sender.ID)
	if err != nil {
		return nil, false, err
	}
	msg := s.newMessage(chatID, in.sender, in.content, in.contentType)
	key := &models.MessageKey{ID: in.id, SenderID: in.sender, ChatID: chatID, MessageID: msg.ID,
		ContentHash: in.hash, CreatedAt: msg.CreatedAt}
	if _, err := s.keys.InsertOne(ctx, key); err != nil {
		if !models.IsDuplicateKey(err) {
			// Unknown whether the key was stored: a retry either claims it or finds it without message.
			return nil, false, errs.Internal(err)
		}
		// Claimed before: by this sender's earlier send, or by a concurrent one.
		if key, err = s.loadKey(ctx, in.id); err != nil {
			return nil, false, err
		}
		if key == nil {
			return nil, false, errs.Internal(errors.New("chat: message key " + in.id + " is a duplicate but cannot be read"))
		}
		stored, err := s.storedFor(ctx, key, in)
		if err != nil {
			return nil, false, err
		}
		if stored != nil {
			v := messageView(sender, stored)
			return &v, true, nil
		}
		// The key's message was never stored: store it now, as recorded.
		msg = &models.Message{ID: key.MessageID, ChatID: key.ChatID, SenderID: key.SenderID, Content: in.content,
			ContentType: in.contentType, CreatedAt: key.CreatedAt}
	}
	if _, err := s.messages.InsertOne(ctx, msg); err != nil {
		if models.IsDuplicateKey(err) {
			// A concurrent retry stored it (and delivers it).
			v := messageView(sender, msg)
			return &v, true, nil
		}
		// The key stays: a retry stores this message with this id.
		return nil, false, errs.Internal(err)
	}
	return s.deliver(ctx, sender, c, msg), false, nil
}
