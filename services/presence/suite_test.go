package presence_test

import (
	"sync"
	"testing"

	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/presence/presencetest"
)

func TestLocalConformance(t *testing.T) {
	// Local has no shared state across processes: the "two nodes" of the
	// suite are one Local per backend, which is what one process is.
	var mu sync.Mutex
	made := map[*presencetest.Backend]*presence.Local{}
	presencetest.Run(t, func(t *testing.T, b *presencetest.Backend) presence.Service {
		mu.Lock()
		defer mu.Unlock()
		if l := made[b]; l != nil {
			return l
		}
		l := presence.NewLocal(presence.LocalOptions{Users: b.Users, Friends: b.Friends, Emitter: b.Emitter})
		made[b] = l
		return l
	})
}
