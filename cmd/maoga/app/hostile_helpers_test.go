package app_test

// Shared helpers of the hostile_*_test.go files (application hardening, issue 8): store snapshots for
// "nothing written" checks and the "nothing leaked" check of error messages.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// storeCounts counts the documents of every collection of the test server's database.
func storeCounts(t *testing.T) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	names, err := srv.Store.DB().ListCollectionNames(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	out := make(map[string]int64, len(names))
	for _, n := range names {
		c, err := srv.Store.Collection(n).CountDocuments(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// settledCounts waits until the counts stop changing (asynchronous welcome notifications of users
// registered just before) and returns them.
func settledCounts(t *testing.T) map[string]int64 {
	t.Helper()
	prev := storeCounts(t)
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		cur := storeCounts(t)
		if fmt.Sprint(cur) == fmt.Sprint(prev) {
			return cur
		}
		prev = cur
	}
	t.Fatalf("store never settled: %v", prev)
	return nil
}

// sameCounts fails when a collection's count differs from before.
func sameCounts(t *testing.T, before map[string]int64, what string) {
	t.Helper()
	// Writes that were accepted by a handler are synchronous; a short grace catches late stragglers.
	time.Sleep(50 * time.Millisecond)
	after := storeCounts(t)
	for k, v := range after {
		if before[k] != v {
			t.Errorf("%s: collection %s went from %d to %d documents", what, k, before[k], v)
		}
	}
}

// leakMarkers are strings an error message shown to a client must never contain: driver and runtime
// internals, password hashes, stack traces.
var leakMarkers = []string{"mongo", "bson", "ferret", "sqlite", "goroutine", ".go:", "panic", "runtime.",
	"$2a$", "$2b$", "password", "objectid(", "\n", "E11000", "dial tcp", "connection refused"}

// checkNoLeak fails when msg contains an internal detail or one of the secrets (other users' names,
// emails, ids that the caller must not learn).
func checkNoLeak(t *testing.T, where, msg string, secrets ...string) {
	t.Helper()
	low := strings.ToLower(msg)
	for _, m := range leakMarkers {
		if strings.Contains(low, strings.ToLower(m)) {
			t.Errorf("%s: message leaks %q: %q", where, m, msg)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(low, strings.ToLower(s)) {
			t.Errorf("%s: message leaks another user's data %q: %q", where, s, msg)
		}
	}
	if len(msg) > 300 {
		t.Errorf("%s: message of %d bytes (echoes input?)", where, len(msg))
	}
}
