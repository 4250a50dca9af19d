package models

import (
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
)

// outageWatch logs a database outage twice: once when the driver stops seeing a server it can write
// to, once when it sees one again. Requests that fail meanwhile answer SERVICE_UNAVAILABLE and log
// at debug level only, so an outage of minutes under load is two lines, not thousands.
//
// It follows the driver's own deployment monitoring (SDAM): the topology description changes when a
// heartbeat fails (also when the database hangs: heartbeats time out) or an operation hits a network
// error, and again when a heartbeat succeeds. Those changes are published in order under the
// driver's topology lock, so the watch cannot see a stale "up" after a "down". (Load-balanced
// deployments have no heartbeats: there the watch stays silent.)
type outageWatch struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	closed  bool      // the store is closing: the driver's last events are no outage
	seen    bool      // a writable server was seen once (before that: start-up, not an outage)
	down    bool      // an outage is going on
	since   time.Time // when it started
	lastErr error     // the latest heartbeat failure: the cause named in the start line
	errAt   time.Time
}

func newOutageWatch(log *slog.Logger) *outageWatch {
	if log == nil {
		log = slog.Default()
	}
	return &outageWatch{log: log, now: time.Now}
}

// monitor is the driver hook (options.Client().SetServerMonitor).
func (w *outageWatch) monitor() *event.ServerMonitor {
	return &event.ServerMonitor{
		// Called with the topology locked: only bookkeeping and a log line here, no operation.
		TopologyDescriptionChanged: func(e *event.TopologyDescriptionChangedEvent) {
			w.topology(writable(e.NewDescription))
		},
		ServerHeartbeatFailed: func(e *event.ServerHeartbeatFailedEvent) { w.heartbeatFailed(e.Failure) },
	}
}

// writable reports whether the deployment has a server that takes writes.
func writable(t event.TopologyDescription) bool {
	for _, s := range t.Servers {
		switch s.Kind {
		case "Standalone", "RSPrimary", "Mongos", "LoadBalancer":
			return true
		}
	}
	return false
}

func (w *outageWatch) heartbeatFailed(err error) {
	w.mu.Lock()
	w.lastErr, w.errAt = err, w.now()
	w.mu.Unlock()
}

// topology records the deployment's state and logs the edges of an outage.
func (w *outageWatch) topology(up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
	case up && !w.seen:
		w.seen = true
	case up && w.down:
		w.down = false
		w.log.Info("database reachable again: outage ended", "outage", w.now().Sub(w.since).Round(time.Millisecond))
	case !up && w.seen && !w.down:
		w.down, w.since = true, w.now()
		attrs := []any{}
		// A heartbeat failure of the last minute explains the change; an operation's network error
		// (no heartbeat failed yet) leaves the cause to the next heartbeat.
		if w.lastErr != nil && w.since.Sub(w.errAt) < time.Minute {
			attrs = append(attrs, "err", w.lastErr)
		}
		w.log.Error("database unreachable: outage started; requests answer SERVICE_UNAVAILABLE until it ends", attrs...)
	}
}

// close silences the watch: disconnecting makes the deployment "unknown" too.
func (w *outageWatch) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// isDown reports whether an outage is going on.
func (w *outageWatch) isDown() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.down
}
