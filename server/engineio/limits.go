package engineio

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits bound what one client address may cost the server. They are checked on
// every handshake (polling or websocket), after the transport, method,
// AllowRequest and EIO checks, so a refused handshake allocates no session.
//
// A zero value takes the defaults; a negative value turns that limit off.
//
// Past a limit the handshake is answered with Node's JSON error body
// {"code":4,"message":...}: 403 for ConnectionsPerIP, 429 with Retry-After for
// the handshake rate. Each offending address is logged once per LogWindow at
// Warn (with the number of refusals since), never once per request.
type Limits struct {
	// ConnectionsPerIP caps the open sessions of one client address (default 100).
	// Handshakes in flight count, so concurrent handshakes cannot overshoot it.
	ConnectionsPerIP int
	// HandshakesPerSecond is the refill rate of each address's handshake token
	// bucket (default 20/s); HandshakeBurst its size (default 40).
	HandshakesPerSecond float64
	HandshakeBurst      int
	// ClientIP names the client of a request. The default is the host of
	// r.RemoteAddr, except loopback addresses, which are not limited (local
	// tools, benchmarks and a reverse proxy on the same host would otherwise
	// share one budget). Behind a proxy, set it to read the header the proxy
	// sets (and that clients cannot forge). An empty result is not limited.
	ClientIP func(r *http.Request) string
	// LogWindow is how often one offending address is logged at most (default 1 minute).
	LogWindow time.Duration
}

// Messages of the refusals (the "message" field of the JSON body).
const (
	MessageTooManyConnections = "Too many connections from this address"
	MessageTooManyHandshakes  = "Too many handshakes from this address, retry later"
)

func (l Limits) withDefaults() Limits {
	if l.ConnectionsPerIP == 0 {
		l.ConnectionsPerIP = 100
	}
	if l.HandshakesPerSecond == 0 {
		l.HandshakesPerSecond = 20
	}
	if l.HandshakeBurst <= 0 {
		l.HandshakeBurst = 40
	}
	if l.ClientIP == nil {
		l.ClientIP = remoteIP
	}
	if l.LogWindow <= 0 {
		l.LogWindow = time.Minute
	}
	return l
}

// remoteIP is the default Limits.ClientIP.
func remoteIP(r *http.Request) string {
	host := hostOf(r.RemoteAddr)
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return host
}

// notLoopback makes Options.ClientAddress the Limits.ClientIP: loopback clients are not limited.
func notLoopback(addr func(*http.Request) string) func(*http.Request) string {
	return func(r *http.Request) string {
		host := addr(r)
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return ""
		}
		return host
	}
}

// hostOf is the host part of a host:port address (the whole of it when it has no port).
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// clientAddress is Options.ClientAddress, by default the host of RemoteAddr.
func (s *Server) clientAddress(r *http.Request) string {
	if s.opts.ClientAddress != nil {
		return s.opts.ClientAddress(r)
	}
	return hostOf(r.RemoteAddr)
}

// limiter enforces Limits. Its maps hold one entry per address with an open
// session, a recent handshake or a recent refusal; idle entries are swept, so
// the memory follows the set of active addresses.
type limiter struct {
	cfg Limits
	log *slog.Logger

	mu       sync.Mutex
	conns    map[string]int          // open sessions + handshakes in flight
	buckets  map[string]*tokenBucket // handshake rate
	offences map[string]*offence     // log-once state
	swept    time.Time
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

type offence struct {
	logged  time.Time
	refused int // since logged
}

func newLimiter(cfg Limits, log *slog.Logger) *limiter {
	return &limiter{
		cfg:      cfg.withDefaults(),
		log:      log,
		conns:    make(map[string]int),
		buckets:  make(map[string]*tokenBucket),
		offences: make(map[string]*offence),
	}
}

// limitSlot is a session slot reserved by admit for one address. The session
// that takes it releases it when it is removed; a handshake that created no
// session releases it at once (settle).
type limitSlot struct {
	l       *limiter
	key     string
	taken   bool // set by Server.start, read by settle: same goroutine
	release sync.Once
}

func (s *limitSlot) free() {
	if s == nil {
		return
	}
	s.release.Do(func() {
		s.l.mu.Lock()
		if n := s.l.conns[s.key] - 1; n > 0 {
			s.l.conns[s.key] = n
		} else {
			delete(s.l.conns, s.key)
		}
		s.l.mu.Unlock()
	})
}

// settle frees the slot if no session took it.
func (s *limitSlot) settle() {
	if s != nil && !s.taken {
		s.free()
	}
}

// admit checks a handshake against the limits and reserves a session slot.
// nil, nil: the request is not limited (no key).
// retry is the Retry-After seconds of a rate refusal.
func (l *limiter) admit(r *http.Request) (slot *limitSlot, refused *RequestError, retry int) {
	key := l.cfg.ClientIP(r)
	if key == "" {
		return nil, nil, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	if max := l.cfg.ConnectionsPerIP; max > 0 && l.conns[key] >= max {
		return nil, l.refuseLocked(key, now, &RequestError{Code: CodeForbidden, Message: MessageTooManyConnections, Status: http.StatusForbidden},
			"open", l.conns[key], "limit", max), 0
	}
	if rate := l.cfg.HandshakesPerSecond; rate > 0 {
		burst := float64(l.cfg.HandshakeBurst)
		b := l.buckets[key]
		if b == nil {
			b = &tokenBucket{tokens: burst, last: now}
			l.buckets[key] = b
		}
		b.tokens += now.Sub(b.last).Seconds() * rate
		if b.tokens > burst {
			b.tokens = burst
		}
		b.last = now
		if b.tokens < 1 {
			e := &RequestError{Code: CodeForbidden, Message: MessageTooManyHandshakes, Status: http.StatusTooManyRequests}
			return nil, l.refuseLocked(key, now, e, "rate", rate, "burst", l.cfg.HandshakeBurst), int((1-b.tokens)/rate) + 1
		}
		b.tokens--
	}
	l.conns[key]++
	return &limitSlot{l: l, key: key}, nil, 0
}

// refuseLocked logs the refusal once per address and LogWindow and returns e.
func (l *limiter) refuseLocked(key string, now time.Time, e *RequestError, attrs ...any) *RequestError {
	o := l.offences[key]
	if o == nil {
		o = &offence{}
		l.offences[key] = o
	}
	o.refused++
	if now.Sub(o.logged) >= l.cfg.LogWindow {
		l.log.Warn("engineio: handshake refused by limit", append([]any{"client", key, "message", e.Message,
			"status", e.Status, "refused", o.refused, "window", l.cfg.LogWindow}, attrs...)...)
		o.logged = now
		o.refused = 0
	}
	return e
}

// sweepLocked drops idle entries, at most once per second: buckets that are
// full again and offences older than the log window.
func (l *limiter) sweepLocked(now time.Time) {
	if now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	if rate := l.cfg.HandshakesPerSecond; rate > 0 {
		full := time.Duration(float64(l.cfg.HandshakeBurst) / rate * float64(time.Second))
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
	}
	for k, o := range l.offences {
		if now.Sub(o.logged) > l.cfg.LogWindow {
			delete(l.offences, k)
		}
	}
}

// openFor is the number of slots held by key (tests).
func (l *limiter) openFor(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[key]
}

// entries is the number of per-address entries kept (tests: memory stays bounded).
func (l *limiter) entries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns) + len(l.buckets) + len(l.offences)
}

// admitHandshake applies the limits to a handshake request. When refused it
// has answered the request and returns false.
func (s *Server) admitHandshake(w http.ResponseWriter, r *http.Request) (*limitSlot, bool) {
	if s.limits == nil {
		return nil, true
	}
	slot, e, retry := s.limits.admit(r)
	if e == nil {
		return slot, true
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	s.refuse(w, r, e)
	return nil, false
}
