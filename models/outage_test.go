package models

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/maoga/maoga/services/errs"
)

func topo(kinds ...string) *event.TopologyDescriptionChangedEvent {
	var servers []event.ServerDescription
	for _, k := range kinds {
		servers = append(servers, event.ServerDescription{Kind: k})
	}
	return &event.TopologyDescriptionChangedEvent{NewDescription: event.TopologyDescription{Servers: servers}}
}

// The watch logs each outage twice (start, end), whatever the number of driver events in between,
// and stays silent before the deployment was first seen (start-up is not an outage).
func TestOutageWatchLogsStartAndEndOnce(t *testing.T) {
	var buf bytes.Buffer
	w := newOutageWatch(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	m := w.monitor()
	m.TopologyDescriptionChanged(topo("Unknown")) // first description of a fresh client
	if buf.Len() != 0 || w.isDown() {
		t.Fatalf("start-up logged as an outage: %s", buf.String())
	}
	m.TopologyDescriptionChanged(topo("Standalone"))
	m.ServerHeartbeatFailed(&event.ServerHeartbeatFailedEvent{Failure: errors.New("connection refused")})
	for i := 0; i < 5; i++ {
		m.TopologyDescriptionChanged(topo("Unknown"))
	}
	if !w.isDown() {
		t.Fatal("not down after the deployment became unknown")
	}
	m.TopologyDescriptionChanged(topo("RSSecondary", "Unknown")) // nothing writable yet
	m.TopologyDescriptionChanged(topo("RSSecondary", "RSPrimary"))
	m.TopologyDescriptionChanged(topo("RSSecondary", "RSPrimary"))
	if w.isDown() {
		t.Fatal("still down after a primary came back")
	}
	out := buf.String()
	if n := strings.Count(out, "outage started"); n != 1 {
		t.Fatalf("%d start lines:\n%s", n, out)
	}
	if n := strings.Count(out, "outage ended"); n != 1 {
		t.Fatalf("%d end lines:\n%s", n, out)
	}
	if !strings.Contains(out, "connection refused") {
		t.Fatalf("start line without the heartbeat's cause:\n%s", out)
	}
	// A second outage is logged again.
	m.TopologyDescriptionChanged(topo("Unknown"))
	if n := strings.Count(buf.String(), "outage started"); n != 2 {
		t.Fatalf("second outage: %d start lines", n)
	}
	// Closing the store is no outage.
	m.TopologyDescriptionChanged(topo("Standalone"))
	w.close()
	m.TopologyDescriptionChanged(topo("Unknown"))
	if n := strings.Count(buf.String(), "outage started"); n != 2 {
		t.Fatalf("close logged as an outage:\n%s", buf.String())
	}
}

// A client pointed at a port nobody listens on fails within its timeout, and its errors classify as
// unavailable: errs.Internal turns them into SERVICE_UNAVAILABLE. Other errors stay INTERNAL.
func TestIsUnavailableOnRealDriverErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	client, err := mongo.Connect(clientOptions("mongodb://"+addr+"/", 300*time.Millisecond, newOutageWatch(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	start := time.Now()
	_, err = client.Database("x").Collection("y").InsertOne(context.Background(), bson.M{"a": 1})
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("insert against a dead server took %v (timeout 300ms)", took)
	}
	if err == nil || !IsUnavailable(err) {
		t.Fatalf("dead server: IsUnavailable(%v) = false", err)
	}
	if e := errs.Internal(err); e.Code != errs.CodeServiceUnavailable || e.Status != 503 || !errs.IsUnavailable(e) {
		t.Fatalf("errs.Internal(server selection error) = %v", e)
	}
	if e := errs.From(err); e.Code != errs.CodeServiceUnavailable {
		t.Fatalf("errs.From: %v", e)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = client.Database("x").Collection("y").InsertOne(ctx, bson.M{"a": 1})
	if err == nil || IsUnavailable(err) {
		t.Fatalf("a cancelled caller is not an outage: %v", err)
	}
	if IsUnavailable(errors.New("decode: bad document")) || errs.Internal(errors.New("boom")).Code != errs.CodeInternal ||
		IsUnavailable(context.DeadlineExceeded) { // a handler's own budget, not the driver's
		t.Fatal("an ordinary error classified as unavailable")
	}
	// A duplicate key from the real store is a conflict, never an outage.
	coll := testStore.Collection("unavailable_dup")
	id := bson.NewObjectID()
	if _, err := coll.InsertOne(context.Background(), bson.M{"_id": id}); err != nil {
		t.Fatal(err)
	}
	_, err = coll.InsertOne(context.Background(), bson.M{"_id": id})
	if !IsDuplicateKey(err) || IsUnavailable(err) {
		t.Fatalf("duplicate key: %v", err)
	}
}
