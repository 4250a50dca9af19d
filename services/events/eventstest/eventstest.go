// Package eventstest checks that an events.Bus behaves as the services rely
// on. The in-process bus runs it; a cluster bus (Redis) runs the same suite
// with two nodes:
//
//	eventstest.Run(t, func(t *testing.T) (node1, node2 events.Bus) { ... })
//
// A single-process bus returns itself twice.
package eventstest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/services/events"
)

// Factory returns two nodes of one fresh bus (possibly the same value twice)
// and arranges their closing with t.Cleanup.
type Factory func(t *testing.T) (node1, node2 events.Bus)

// Run runs the suite.
func Run(t *testing.T, newBus Factory) {
	t.Run("OrderAndStamp", func(t *testing.T) { testOrder(t, newBus) })
	t.Run("Scopes", func(t *testing.T) { testScopes(t, newBus) })
	t.Run("PanicDoesNotStopDelivery", func(t *testing.T) { testPanic(t, newBus) })
	t.Run("Unsubscribe", func(t *testing.T) { testUnsubscribe(t, newBus) })
}

const wait = 5 * time.Second

type recorder struct {
	mu  sync.Mutex
	got []events.Event
	ch  chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1000)} }

func (r *recorder) handle(_ context.Context, e events.Event) error {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	r.ch <- struct{}{}
	return nil
}

func (r *recorder) waitN(t *testing.T, n int) []events.Event {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			out := append([]events.Event(nil), r.got...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("got %d events, want %d", r.count(), n)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func name(t *testing.T) string { return fmt.Sprintf("test.%s.%d", t.Name(), time.Now().UnixNano()) }

func publish(t *testing.T, b events.Bus, ev string, data any) {
	t.Helper()
	e, err := events.New(ev, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func testOrder(t *testing.T, newBus Factory) {
	b, _ := newBus(t)
	ev := name(t)
	r := newRecorder()
	b.Subscribe(ev, events.Handler{Name: "order", Scope: events.Local, Handle: r.handle})
	for i := 0; i < 100; i++ {
		publish(t, b, ev, map[string]int{"i": i})
	}
	got := r.waitN(t, 100)
	for i, e := range got {
		var d struct{ I int }
		if err := json.Unmarshal(e.Data, &d); err != nil || d.I != i {
			t.Fatalf("event %d carries %s", i, e.Data)
		}
		if e.Name != ev || e.ID == "" || e.Origin == "" || e.At.IsZero() {
			t.Fatalf("event not stamped: %+v", e)
		}
	}
}

// testScopes: with a handler subscribed on each node, a Local handler runs
// once per node and a ClusterOnce handler once in all.
func testScopes(t *testing.T, newBus Factory) {
	n1, n2 := newBus(t)
	ev := name(t)
	local, once := newRecorder(), newRecorder()
	for _, b := range []events.Bus{n1, n2} {
		b.Subscribe(ev, events.Handler{Name: "scopes.local", Scope: events.Local, Handle: local.handle})
		b.Subscribe(ev, events.Handler{Name: "scopes.once", Scope: events.ClusterOnce, Handle: once.handle})
	}
	for i := 0; i < 10; i++ {
		publish(t, []events.Bus{n1, n2}[i%2], ev, i)
	}
	local.waitN(t, 20)
	once.waitN(t, 10)
	time.Sleep(200 * time.Millisecond) // room for wrong extra deliveries to show up
	if n := local.count(); n != 20 {
		t.Fatalf("local handler ran %d times for 10 events on 2 nodes, want 20", n)
	}
	if n := once.count(); n != 10 {
		t.Fatalf("cluster-once handler ran %d times for 10 events, want 10", n)
	}
	seen := map[string]bool{}
	for _, e := range once.waitN(t, 10) {
		if seen[e.ID] {
			t.Fatalf("event %s handled twice by the cluster-once handler", e.ID)
		}
		seen[e.ID] = true
	}
}

func testPanic(t *testing.T, newBus Factory) {
	b, _ := newBus(t)
	ev := name(t)
	r := newRecorder()
	first := true
	b.Subscribe(ev, events.Handler{Name: "panicky", Handle: func(ctx context.Context, e events.Event) error {
		if first {
			first = false
			panic("handler bug")
		}
		return r.handle(ctx, e)
	}})
	publish(t, b, ev, 1)
	publish(t, b, ev, 2)
	if got := r.waitN(t, 1); string(got[0].Data) != "2" {
		t.Fatalf("after a panic got %s", got[0].Data)
	}
}

func testUnsubscribe(t *testing.T, newBus Factory) {
	b, _ := newBus(t)
	ev := name(t)
	r, other := newRecorder(), newRecorder()
	off := b.Subscribe(ev, events.Handler{Name: "unsub", Handle: r.handle})
	b.Subscribe(ev, events.Handler{Name: "stays", Handle: other.handle})
	publish(t, b, ev, 1)
	r.waitN(t, 1)
	off()
	publish(t, b, ev, 2)
	other.waitN(t, 2)
	time.Sleep(100 * time.Millisecond)
	if n := r.count(); n != 1 {
		t.Fatalf("unsubscribed handler ran %d times", n)
	}
}
