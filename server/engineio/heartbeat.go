package engineio

import (
	"sync"
	"time"
)

// heartbeats runs the heartbeat of every session of a Server on one timer: a
// min-heap of the sessions' next firing times, the timer set for the earliest.
// A session costs a heap entry (16 bytes) instead of a time.Timer of its own
// (~130 bytes with the runtime's timer). Each firing runs Conn.onHeartbeat on
// its own goroutine, as a time.AfterFunc timer per session did, so a session
// being closed never delays the others.
type heartbeats struct {
	mu    sync.Mutex
	q     []hbEntry // min-heap on at
	timer *time.Timer
	armed int64 // when the timer is set for (as hbEntry.at); 0 = stopped
}

type hbEntry struct {
	at int64 // monotonic nanoseconds since hbBase
	c  *Conn
}

// hbBase is the origin of the heap's times. They are monotonic, as the
// sessions' own due times (time.Now readings) are compared: a wall-clock
// heap could fire a session that its monotonic check finds not yet due.
var hbBase = time.Now()

func hbNow() int64 { return int64(time.Since(hbBase)) }

// schedule (re)schedules c's next heartbeat at at. c.mu is held.
func (h *heartbeats) schedule(c *Conn, at time.Time) {
	e := hbEntry{int64(at.Sub(hbBase)), c}
	h.mu.Lock()
	if i := c.hbIdx - 1; i >= 0 {
		h.q[i] = e
		if !h.up(int(i)) {
			h.down(int(i))
		}
	} else {
		h.q = append(h.q, e)
		c.hbIdx = int32(len(h.q))
		h.up(len(h.q) - 1)
	}
	h.rearmLocked()
	h.mu.Unlock()
}

// cancel removes c's heartbeat. c.mu is held.
func (h *heartbeats) cancel(c *Conn) {
	h.mu.Lock()
	if i := int(c.hbIdx - 1); i >= 0 {
		h.removeLocked(i)
		h.rearmLocked()
	}
	h.mu.Unlock()
}

// scheduled reports how many sessions have a heartbeat scheduled (tests).
func (h *heartbeats) scheduled() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.q)
}

func (h *heartbeats) removeLocked(i int) {
	last := len(h.q) - 1
	h.q[i].c.hbIdx = 0
	if i != last {
		h.q[i] = h.q[last]
		h.q[i].c.hbIdx = int32(i + 1)
	}
	h.q[last] = hbEntry{}
	h.q = h.q[:last]
	if i != last {
		if !h.up(i) {
			h.down(i)
		}
	}
	if cap(h.q) > 64 && len(h.q) < cap(h.q)/4 {
		h.q = append([]hbEntry(nil), h.q...) // give back the memory of a crowd that left
	}
}

// fire takes every session that is due off the heap and runs its heartbeat.
func (h *heartbeats) fire() {
	now := hbNow()
	h.mu.Lock()
	h.armed = 0
	var due []*Conn
	for len(h.q) > 0 && h.q[0].at <= now {
		due = append(due, h.q[0].c)
		h.removeLocked(0)
	}
	h.rearmLocked()
	h.mu.Unlock()
	for _, c := range due {
		go c.onHeartbeat()
	}
}

func (h *heartbeats) rearmLocked() {
	if len(h.q) == 0 {
		if h.timer != nil && h.armed != 0 {
			h.timer.Stop()
			h.armed = 0
		}
		return
	}
	at := h.q[0].at
	if at == h.armed {
		return
	}
	h.armed = at
	d := time.Duration(at - hbNow())
	if h.timer == nil {
		h.timer = time.AfterFunc(d, h.fire)
	} else {
		h.timer.Reset(d)
	}
}

func (h *heartbeats) less(i, j int) bool { return h.q[i].at < h.q[j].at }

func (h *heartbeats) swap(i, j int) {
	h.q[i], h.q[j] = h.q[j], h.q[i]
	h.q[i].c.hbIdx = int32(i + 1)
	h.q[j].c.hbIdx = int32(j + 1)
}

// up moves entry i towards the root; reports whether it moved.
func (h *heartbeats) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.swap(i, p)
		i = p
		moved = true
	}
	return moved
}

func (h *heartbeats) down(i int) {
	n := len(h.q)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
