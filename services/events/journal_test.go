package events_test

import (
	"testing"

	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/events/journaltest"
)

func TestMemoryJournalConformance(t *testing.T) {
	journaltest.Run(t, func(*testing.T) events.Journal { return events.NewMemoryJournal() })
}
