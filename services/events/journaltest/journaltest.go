// Package journaltest checks that an events.Journal behaves as events.Memory relies on:
//
//	journaltest.Run(t, func(t *testing.T) events.Journal { ... a fresh, empty journal ... })
package journaltest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/maoga/maoga/services/events"
)

// Run runs the checks, each on a fresh journal from newJournal.
func Run(t *testing.T, newJournal func(t *testing.T) events.Journal) {
	t.Run("SaveTakeDone", func(t *testing.T) { saveTakeDone(t, newJournal(t)) })
	t.Run("LeaseHidesTakenEntries", func(t *testing.T) { leaseHides(t, newJournal(t)) })
	t.Run("ReleaseAndNotBefore", func(t *testing.T) { releaseAndNotBefore(t, newJournal(t)) })
	t.Run("SaveKeepsTheFirstCopy", func(t *testing.T) { saveKeepsFirst(t, newJournal(t)) })
}

func entry(i int, handler string) events.JournalEntry {
	return events.JournalEntry{Handler: handler, Event: events.Event{
		Name: "user.registered", ID: fmt.Sprintf("ev-%03d", i), Origin: "node-a",
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"s":"\u00e9\"x"}`, i)),
		At:   time.Date(2026, 12, 3, 10, 0, i, 0, time.UTC),
	}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func saveTakeDone(t *testing.T, j events.Journal) {
	c := ctx(t)
	var batch []events.JournalEntry
	for i := 0; i < 5; i++ {
		batch = append(batch, entry(i, "h1"))
	}
	batch = append(batch, entry(9, "h2"))
	if err := j.Save(c, batch); err != nil {
		t.Fatal(err)
	}
	got, err := j.Take(c, "h1", 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("took %d entries with limit 3", len(got))
	}
	for i, e := range got {
		want := entry(i, "h1")
		if e.Handler != "h1" || e.Event.ID != want.Event.ID || e.Event.Name != want.Event.Name ||
			e.Event.Origin != want.Event.Origin || !e.Event.At.Equal(want.Event.At) || e.Attempts != 1 {
			t.Fatalf("entry %d: got %+v, want %+v with Attempts 1 (oldest first)", i, e, want)
		}
		var a, b any
		if json.Unmarshal(e.Event.Data, &a) != nil || json.Unmarshal(want.Event.Data, &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("entry %d data %s, want %s", i, e.Event.Data, want.Event.Data)
		}
	}
	for _, e := range got {
		if err := j.Done(c, e.Handler, e.Event.ID); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := j.Take(c, "h1", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 || rest[0].Event.ID != "ev-003" || rest[1].Event.ID != "ev-004" {
		t.Fatalf("after Done of three, took %+v; want ev-003, ev-004", rest)
	}
	other, err := j.Take(c, "h2", 10, time.Minute)
	if err != nil || len(other) != 1 || other[0].Event.ID != "ev-009" {
		t.Fatalf("the other handler's entry: %+v, %v", other, err)
	}
	// Done of an entry that is gone is not an error (a second run after a lost lease).
	if err := j.Done(c, "h2", "ev-009"); err != nil {
		t.Fatal(err)
	}
	if err := j.Done(c, "h2", "ev-009"); err != nil {
		t.Fatalf("second Done: %v", err)
	}
}

func leaseHides(t *testing.T, j events.Journal) {
	c := ctx(t)
	if err := j.Save(c, []events.JournalEntry{entry(1, "h")}); err != nil {
		t.Fatal(err)
	}
	if got, err := j.Take(c, "h", 10, 300*time.Millisecond); err != nil || len(got) != 1 {
		t.Fatalf("first take: %v %v", got, err)
	}
	if got, err := j.Take(c, "h", 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("an entry under lease was taken again: %v %v", got, err)
	}
	time.Sleep(400 * time.Millisecond)
	got, err := j.Take(c, "h", 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("after the lease ran out: %+v %v; want the entry with Attempts 2", got, err)
	}
}

func releaseAndNotBefore(t *testing.T, j events.Journal) {
	c := ctx(t)
	later := entry(2, "h")
	later.NotBefore = time.Now().Add(time.Hour)
	later.Attempts = 1
	if err := j.Save(c, []events.JournalEntry{entry(1, "h"), later}); err != nil {
		t.Fatal(err)
	}
	got, err := j.Take(c, "h", 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].Event.ID != "ev-001" {
		t.Fatalf("took %+v %v; want only the due entry", got, err)
	}
	if err := j.Release(c, "h", "ev-001", time.Now().Add(200*time.Millisecond), "store down"); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.Take(c, "h", 10, time.Minute); len(got) != 0 {
		t.Fatalf("released entry taken before its NotBefore: %+v", got)
	}
	time.Sleep(300 * time.Millisecond)
	got, err = j.Take(c, "h", 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].Event.ID != "ev-001" || got[0].Attempts != 2 || got[0].LastError != "store down" {
		t.Fatalf("after NotBefore: %+v %v; want ev-001, Attempts 2, LastError", got, err)
	}
	if err := j.Release(c, "h", "ev-002", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	got, err = j.Take(c, "h", 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].Event.ID != "ev-002" || got[0].Attempts != 2 {
		t.Fatalf("released with zero NotBefore: %+v %v; want ev-002 with Attempts 2", got, err)
	}
}

func saveKeepsFirst(t *testing.T, j events.Journal) {
	c := ctx(t)
	first := entry(1, "h")
	if err := j.Save(c, []events.JournalEntry{first}); err != nil {
		t.Fatal(err)
	}
	again := entry(1, "h")
	again.NotBefore = time.Now().Add(time.Hour)
	if err := j.Save(c, []events.JournalEntry{again, entry(2, "h")}); err != nil {
		t.Fatalf("saving an entry twice (two nodes spilling the same event): %v", err)
	}
	got, err := j.Take(c, "h", 10, time.Minute)
	if err != nil || len(got) != 2 {
		t.Fatalf("took %+v %v; want the first copy (due now) and the new entry", got, err)
	}
}
