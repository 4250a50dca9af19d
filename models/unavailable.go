package models

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/maoga/maoga/services/errs"
)

// The one place that decides which driver errors mean "the database cannot be reached right now".
// errs.Internal (and errs.From) consult it, so every store error that travels up as INTERNAL becomes
// SERVICE_UNAVAILABLE instead — REST 503, the socket `error` event with that code — without each
// call site knowing about the driver.
func init() { errs.RegisterUnavailable(IsUnavailable) }

// IsUnavailable reports whether err is the driver saying the database is unreachable or too slow: no
// server could be selected in time, no pooled connection came free in time, a connection could not
// be opened or broke (network errors, read/write timeouts), the server's own time limit ran out, or
// the driver saw the deadline could not be met. These all come as the driver's own error types.
//
// Not an outage: a cancelled context (the caller went away: a closed socket, a dropped HTTP request)
// and a bare context.DeadlineExceeded that no driver call produced (a handler's own time budget).
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var sel topology.ServerSelectionError
	var conn topology.ConnectionError
	var pool topology.WaitQueueTimeoutError
	var server mongo.ServerError
	switch {
	case errors.As(err, &sel), errors.As(err, &conn), errors.As(err, &pool), mongo.IsNetworkError(err),
		errors.Is(err, driver.ErrDeadlineWouldBeExceeded):
		return true
	case errors.As(err, &server):
		return mongo.IsTimeout(err) // maxTimeMS expired, or a timeout label
	}
	return false
}
