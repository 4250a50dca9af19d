package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/events/eventstest"
)

func TestMemoryConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) (events.Bus, events.Bus) {
		b := events.NewMemory(events.MemoryOptions{})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = b.Close(ctx)
		})
		return b, b
	})
}
