package socket_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/models"
)

// TestSweepInactiveAccounts: a ban written to the store without any event (the admin command without
// REDIS_URL, a database edit) reaches the user's idle socket at the next sweep: `error` ACCESS_DENIED
// "Account is banned", then the disconnect. Active users' sockets stay.
func TestSweepInactiveAccounts(t *testing.T) {
	e := newEnv(t)
	bad, good := e.register("bad"), e.register("good")
	cb, cg := e.connect(bad), e.connect(good)
	const interval = 100 * time.Millisecond
	stop := socket.SweepInactiveAccounts(e.nsp, e.users, interval, nil)
	defer stop()

	id, _ := models.ParseID(bad.ID)
	start := time.Now()
	if _, err := e.users.Update(context.Background(), id, bson.M{"accountStatus": models.AccountBanned}); err != nil {
		t.Fatal(err)
	}
	var body socket.ErrorBody
	next(t, cb, "error", &body)
	if body.Code != "ACCESS_DENIED" || body.Message != "Account is banned" {
		t.Fatalf("error event %+v", body)
	}
	ctx, cancel := ctx5()
	defer cancel()
	if reason, _ := cb.WaitDisconnect(ctx); reason != "io server disconnect" {
		t.Fatalf("reason %q", reason)
	}
	took := time.Since(start)
	t.Logf("banned in the store, socket disconnected by the sweep after %v (interval %v)", took.Round(time.Millisecond), interval)
	if took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
	time.Sleep(3 * interval)
	select {
	case <-cg.Done():
		t.Fatal("an active user's socket was disconnected")
	default:
	}
	// the sweep keeps running after a refusal: a second ban is found too
	if _, err := e.users.Update(context.Background(), mustID(good.ID), bson.M{"accountStatus": models.AccountSuspended}); err != nil {
		t.Fatal(err)
	}
	if reason, _ := cg.WaitDisconnect(ctx); reason != "io server disconnect" {
		t.Fatalf("second user: %q", reason)
	}
}

func mustID(s string) bson.ObjectID {
	id, _ := models.ParseID(s)
	return id
}
