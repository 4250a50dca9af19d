package lobby

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Test hooks: a lobby write whose outcome is unknown cannot be produced on demand against the real
// store, so the tests hand its error to the seat logic directly.

func (s *Service) ReleaseSeatAfter(err error, uid, lid bson.ObjectID) {
	s.releaseSeatAfter(err, uid, lid)
}

func (s *Service) RetryReleases(ctx context.Context) { s.retryReleases(ctx) }
