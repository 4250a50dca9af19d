package presence

import (
	"context"
	"fmt"
	"time"

	"github.com/maoga/maoga/models"
)

// FromModels adapts the users and friendships collections to UserStore and
// FriendLister.
func FromModels(users *models.Users, friendships *models.Friendships) ModelsBackend {
	return ModelsBackend{users: users, friendships: friendships}
}

// ModelsBackend implements UserStore and FriendLister on the database.
type ModelsBackend struct {
	users       *models.Users
	friendships *models.Friendships
}

// SavePresence implements UserStore.
func (b ModelsBackend) SavePresence(ctx context.Context, userID, status string, lastActive time.Time) error {
	id, ok := models.ParseID(userID)
	if !ok {
		return fmt.Errorf("presence: user id %q is not an ObjectID", userID)
	}
	return b.users.SetPresence(ctx, id, status, lastActive)
}

// FriendIDs implements FriendLister: the other side of each accepted friendship.
func (b ModelsBackend) FriendIDs(ctx context.Context, userID string) ([]string, error) {
	id, ok := models.ParseID(userID)
	if !ok {
		return nil, fmt.Errorf("presence: user id %q is not an ObjectID", userID)
	}
	list, err := b.friendships.Accepted(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(list))
	for i := range list {
		out[i] = list[i].Other(id).Hex()
	}
	return out, nil
}
