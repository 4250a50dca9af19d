package notifications

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
)

// Notification types created from internal events.
const (
	TypeWelcome          = "welcome"
	TypeFriendRequest    = "friend_request"
	TypeFriendAccepted   = "friend_accepted"
	defaultUserName      = "Someone"
	welcomeTitle         = "Welcome to Maoga"
	friendRequestTitle   = "New friend request"
	friendAcceptedTitle  = "Friend request accepted"
	handlerWelcome       = "notifications.welcome"
	handlerFriendRequest = "notifications.friend-request"
	handlerFriendAccept  = "notifications.friend-accepted"
)

// Subscribe makes the service react to internal events:
// user.registered → welcome notification; friendship.requested → a
// notification for the addressee; friendship.accepted → one for the
// requester. The effect (a stored notification) is global, so the handlers
// are ClusterOnce. The returned func unsubscribes them all.
func (s *Service) Subscribe(bus events.Bus) (unsubscribe func()) {
	offs := []func(){
		bus.Subscribe(events.UserRegistered, events.Handler{
			Name: handlerWelcome, Scope: events.ClusterOnce, Handle: s.onUserRegistered}),
		bus.Subscribe(events.FriendshipRequested, events.Handler{
			Name: handlerFriendRequest, Scope: events.ClusterOnce, Handle: s.onFriendshipRequested}),
		bus.Subscribe(events.FriendshipAccepted, events.Handler{
			Name: handlerFriendAccept, Scope: events.ClusterOnce, Handle: s.onFriendshipAccepted}),
	}
	return func() {
		for _, off := range offs {
			off()
		}
	}
}

func (s *Service) onUserRegistered(ctx context.Context, e events.Event) error {
	var d events.UserRegisteredData
	if err := e.Decode(&d); err != nil {
		return err
	}
	name := d.DisplayName
	if name == "" {
		name = d.Username
	}
	if name == "" {
		name = "there"
	}
	return s.createFor(ctx, e, handlerWelcome, Draft{
		UserID:  d.UserID,
		Type:    TypeWelcome,
		Title:   welcomeTitle,
		Message: fmt.Sprintf("Hi %s, welcome to Maoga! Add friends to see when they are online and play together.", name),
	})
}

func (s *Service) onFriendshipRequested(ctx context.Context, e events.Event) error {
	var d events.FriendshipData
	if err := e.Decode(&d); err != nil {
		return err
	}
	name := d.RequesterName
	if name == "" {
		name = s.nameOf(ctx, d.RequesterID)
	}
	return s.createFor(ctx, e, handlerFriendRequest, Draft{
		UserID:  d.AddresseeID,
		Type:    TypeFriendRequest,
		Title:   friendRequestTitle,
		Message: name + " sent you a friend request.",
		Data:    map[string]any{"friendshipId": d.FriendshipID, "requesterId": d.RequesterID},
	})
}

func (s *Service) onFriendshipAccepted(ctx context.Context, e events.Event) error {
	var d events.FriendshipData
	if err := e.Decode(&d); err != nil {
		return err
	}
	name := d.AddresseeName
	if name == "" {
		name = s.nameOf(ctx, d.AddresseeID)
	}
	return s.createFor(ctx, e, handlerFriendAccept, Draft{
		UserID:  d.RequesterID,
		Type:    TypeFriendAccepted,
		Title:   friendAcceptedTitle,
		Message: name + " accepted your friend request.",
		Data:    map[string]any{"friendshipId": d.FriendshipID, "userId": d.AddresseeID},
	})
}

// nameOf looks a user's name up for a message; a failed lookup still lets
// the notification go out with a neutral name (the lookup error is logged).
func (s *Service) nameOf(ctx context.Context, userID string) string {
	id, ok := models.ParseID(userID)
	if !ok {
		return defaultUserName
	}
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		s.log.Warn("looking up a name for a notification failed", "userId", userID, "err", err)
		return defaultUserName
	}
	return u.Name()
}

// createFor stores the notification an event asks for. Its id comes from the event and the handler
// (EventNotificationID), so a retry or a second delivery of the event cannot notify twice; while the
// store is unreachable it retries with backoff until ctx ends (the bus's handler timeout), so an
// outage of a few seconds between the first write (the friendship, the user) and this second one
// loses no notification.
func (s *Service) createFor(ctx context.Context, e events.Event, handler string, d Draft) error {
	d.ID = EventNotificationID(e, handler)
	wait := 100 * time.Millisecond
	for {
		_, err := s.Create(ctx, d)
		if err == nil || !errs.IsUnavailable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// EventNotificationID is the id of the notification handler creates for event e: the event's time
// in the ObjectID's timestamp bytes (ids still sort roughly by time), then a hash of the event id
// and the handler name. An event without id gets a fresh id.
func EventNotificationID(e events.Event, handler string) bson.ObjectID {
	if e.ID == "" {
		return bson.NewObjectID()
	}
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], uint32(e.At.Unix()))
	sum := sha256.Sum256([]byte(e.ID + "\x00" + handler))
	copy(id[4:], sum[:8])
	return id
}

// TypeChatMessage is the type services/chat gives its unread-message notifications.
const TypeChatMessage = "chat_message"

// DefaultChannels is which channels each kind of notification goes out on: mail for what is worth
// reading later (the welcome, a friend request), push for what asks for an answer now. In-app always.
var DefaultChannels = map[string][]string{
	TypeWelcome:        {models.ChannelInApp, models.ChannelEmail},
	TypeFriendRequest:  {models.ChannelInApp, models.ChannelPush, models.ChannelEmail},
	TypeFriendAccepted: {models.ChannelInApp, models.ChannelPush},
	TypeChatMessage:    {models.ChannelInApp, models.ChannelPush},
}

// ConfiguredChannels is policy without the outside channels that have no sender (email without
// SMTP_URL, push without PUSH_WEBHOOK_URL): a deployment that has no mail server does not record a
// failed email on every notification. A Draft that names a channel explicitly still gets it, and
// an unconfigured one is marked failed.
func ConfiguredChannels(policy map[string][]string, email, push bool) map[string][]string {
	out := make(map[string][]string, len(policy))
	for typ, chans := range policy {
		for _, ch := range chans {
			if (ch == models.ChannelEmail && !email) || (ch == models.ChannelPush && !push) {
				continue
			}
			out[typ] = append(out[typ], ch)
		}
	}
	return out
}
