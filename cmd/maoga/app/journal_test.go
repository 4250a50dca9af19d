package app_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/events/storejournal"
)

// metricValue reads one unlabelled series from /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s not in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A registration burst past the event queue (EVENT_QUEUE_SIZE=1 here; 1024 by default, which the
// 2000-client soak overran): the deliveries that find the welcome handler's queue full wait in the
// stored journal and run when it catches up. Every user gets a welcome notification, none twice,
// and the journal ends empty.
func TestRegistrationBurstPastTheEventQueueLosesNoNotification(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.EventQueueSize = 1
	// The whole burst must reach the event queue: load shedding would refuse part of 24 concurrent
	// registrations on a slow (-race) run with 503 "server busy" (its own test: shed_test.go).
	cfg.LimitInflightMax = 0
	n := startClusterNode(t, cfg)

	const users = 24
	ids := make([]string, users)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], _ = n.register(t)
		}()
	}
	wg.Wait()
	spilled := metricValue(t, n.url, "maoga_events_spilled_total")
	if spilled == 0 {
		t.Fatal("no delivery found the queue full: the burst did not exercise the journal")
	}

	store := n.app.Store
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := store.Collection(storejournal.Collection).CountDocuments(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := store.Collection(models.NotificationsCollection).CountDocuments(ctx, bson.M{"type": "welcome"})
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 && stored == users {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d welcome notifications stored, %d journal entries left", stored, users, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range ids {
		uid, err := bson.ObjectIDFromHex(id)
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.Collection(models.NotificationsCollection).CountDocuments(ctx, bson.M{"userId": uid, "type": "welcome"})
		if err != nil || c != 1 {
			t.Fatalf("user %s has %d welcome notifications (%v), want 1", id, c, err)
		}
	}
	if d := metricValue(t, n.url, "maoga_events_dropped_total"); d != 0 {
		t.Fatalf("%v deliveries dropped", d)
	}
	t.Logf("%v of %d welcome deliveries went through the journal (replayed %v)", spilled, users,
		metricValue(t, n.url, "maoga_events_replayed_total"))
}
