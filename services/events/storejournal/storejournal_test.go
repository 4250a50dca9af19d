package storejournal_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/events/journaltest"
	"github.com/maoga/maoga/services/events/storejournal"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "journal_test", &store) }

var n atomic.Int64

// fresh empties the collection: each check starts from an empty journal.
func fresh(t *testing.T) events.Journal {
	if _, err := store.Collection(storejournal.Collection).DeleteMany(context.Background(), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	return storejournal.New(store)
}

func TestConformance(t *testing.T) {
	journaltest.Run(t, fresh)
}

// Two buses ("nodes") taking from one stored journal at once: every delivery runs, none twice.
func TestTwoNodesTakeEachEntryOnce(t *testing.T) {
	j := fresh(t)
	var entries []events.JournalEntry
	for i := 0; i < 60; i++ {
		entries = append(entries, events.JournalEntry{Handler: "h", Event: events.Event{
			Name: "x", ID: fmt.Sprintf("ev-%d-%d", n.Add(1), i), Data: []byte(`{}`), At: time.Now()}})
	}
	if err := j.Save(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 120)
	take := func() {
		for {
			es, err := j.Take(context.Background(), "h", 7, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if len(es) == 0 {
				return
			}
			for _, e := range es {
				got <- e.Event.ID
			}
		}
	}
	done := make(chan struct{}, 2)
	for i := 0; i < 2; i++ {
		go func() { take(); done <- struct{}{} }()
	}
	<-done
	<-done
	close(got)
	seen := map[string]int{}
	for id := range got {
		seen[id]++
	}
	if len(seen) != 60 {
		t.Fatalf("%d of 60 entries taken", len(seen))
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("%s taken %d times", id, c)
		}
	}
}
