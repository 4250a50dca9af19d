package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handshake is a copy of what the handshake request carried. The *http.Request
// itself is not retained after the handshake.
type Handshake struct {
	Headers    http.Header
	Query      url.Values
	RemoteAddr string // the peer (host:port), a reverse proxy's when there is one
	// Address is the client's address (no port): Options.ClientAddress, by
	// default the host of RemoteAddr.
	Address string
	URL     string
	Secure  bool
	Time    time.Time
}

// handshakeData is what a session keeps of its handshake request: the
// headers packed in one string and the query left in the URL, so that an
// idle session does not hold two maps (~1 KB); Conn.Handshake unpacks them.
type handshakeData struct {
	headers    string // "Key\x00value\x00" for every value, keys canonical, in sorted order
	remoteAddr string
	address    string
	url        string // the request URI; the query is parsed from it
	secure     bool
	time       int64 // unix nanoseconds (a time.Time is 24 bytes)

	slot *limitSlot // per-address session slot (limits.go), released when the session is removed
}

// newHandshakeData copies what the session keeps of r.
func newHandshakeData(r *http.Request, address string) *handshakeData {
	keys := make([]string, 0, len(r.Header)+1)
	n := 0
	for k, vs := range r.Header {
		if k == "Host" {
			continue
		}
		keys = append(keys, k)
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	if r.Host != "" {
		// net/http moves Host out of r.Header; Node's handshake.headers has it.
		keys = append(keys, "Host")
		n += len("Host") + len(r.Host) + 2
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	for _, k := range keys {
		vs := r.Header[k]
		if k == "Host" {
			vs = []string{r.Host}
		}
		for _, v := range vs {
			b.WriteString(k)
			b.WriteByte(0)
			b.WriteString(v)
			b.WriteByte(0)
		}
	}
	return &handshakeData{
		headers:    b.String(),
		remoteAddr: r.RemoteAddr,
		address:    address,
		url:        r.URL.RequestURI(),
		secure:     r.TLS != nil,
		time:       time.Now().UnixNano(),
	}
}

// handshake unpacks h into a new Handshake.
func (h *handshakeData) handshake() *Handshake {
	hs := &Handshake{RemoteAddr: h.remoteAddr, Address: h.address, URL: h.url, Secure: h.secure, Time: time.Unix(0, h.time)}
	hs.Headers = make(http.Header)
	for rest := h.headers; rest != ""; {
		k, after, _ := strings.Cut(rest, "\x00")
		v, after2, _ := strings.Cut(after, "\x00")
		hs.Headers[k] = append(hs.Headers[k], v)
		rest = after2
	}
	hs.Query = url.Values{}
	if _, q, ok := strings.Cut(h.url, "?"); ok {
		hs.Query, _ = url.ParseQuery(q)
	}
	return hs
}

// Message is one engine.io "message" packet (type 4). Data is shared between
// the connections it is sent to and never mutated after Send.
type Message struct {
	Data   []byte
	Binary bool
}

// Handler receives the events of one Conn. Calls are serialized per Conn.
type Handler interface {
	OnMessage(c *Conn, data []byte, binary bool) // data valid only during the call: copy what you keep
	OnClose(c *Conn, reason string, err error)   // exactly once; reason as Node names it
}

// Server is an Engine.IO v4 server. It is an http.Handler meant to be mounted
// at Options.Path.
type Server struct {
	opts     Options
	log      *slog.Logger
	upgrades []string // offered to polling clients in the open packet

	mu      sync.RWMutex
	conns   map[string]*Conn
	closing bool
	onConn  func(*Conn)

	count  atomic.Int64
	active sync.WaitGroup // one per Conn until its OnClose has returned

	deflate *deflater // nil when per-message deflate is off
	tombs   tombstones
	limits  *limiter // per-address limits (limits.go)
	hb      heartbeats
}

// ReadMode returns the websocket read mode in use.
func (s *Server) ReadMode() ReadMode { return s.opts.ReadMode }

// tombstones remembers, for a short while, polling sessions that the client
// closed with a close packet, so that one GET racing with that POST is answered
// with noop (as Node answers a pending GET) instead of "Session ID unknown".
type tombstones struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const tombstoneTTL = 2 * time.Second

func (t *tombstones) add(sid string) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]time.Time)
	}
	if len(t.m) >= 256 {
		for k, exp := range t.m {
			if now.After(exp) {
				delete(t.m, k)
			}
		}
	}
	if len(t.m) < 4096 {
		t.m[sid] = now.Add(tombstoneTTL)
	}
}

// take reports whether sid was closed by its client moments ago, once.
func (t *tombstones) take(sid string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.m[sid]
	if ok {
		delete(t.m, sid)
	}
	return ok && time.Now().Before(exp)
}

// NewServer returns a Server with opts completed by the defaults.
func NewServer(opts Options) *Server {
	opts = opts.withDefaults()
	limits := opts.Limits
	if limits.ClientIP == nil && opts.ClientAddress != nil {
		limits.ClientIP = notLoopback(opts.ClientAddress)
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		conns:    make(map[string]*Conn),
		upgrades: []string{},
		limits:   newLimiter(limits, opts.Logger),
	}
	if opts.allows(TransportWebSocket) && !opts.DisableUpgrades {
		s.upgrades = []string{TransportWebSocket}
	}
	if opts.PerMessageDeflate != nil {
		s.deflate = newDeflater(opts.PerMessageDeflate, opts.MaxPayload)
	}
	return s
}

// OnConnection registers fn, called synchronously during each handshake before
// the open packet is answered. fn should call c.SetHandler.
func (s *Server) OnConnection(fn func(c *Conn)) {
	s.mu.Lock()
	s.onConn = fn
	s.mu.Unlock()
}

// Count returns the number of open sessions.
func (s *Server) Count() int { return int(s.count.Load()) }

// Close sends a close packet to every client and waits until each session has
// closed and its OnClose has returned, or ctx is done. New handshakes are refused.
// Sessions still open when ctx ends are closed abruptly and ctx.Err() is returned.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.Close(ReasonServerShutdown)
	}
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.finish(ReasonServerShutdown, ctx.Err())
		}
		return ctx.Err()
	}
}

func (s *Server) lookup(sid string) *Conn {
	s.mu.RLock()
	c := s.conns[sid]
	s.mu.RUnlock()
	return c
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
		s.count.Add(-1)
	}
	s.mu.Unlock()
	if c.hs != nil {
		c.hs.slot.free()
	}
}

// register creates and stores a session; nil when the server is closing.
func (s *Server) register(hs *handshakeData, transport string) *Conn {
	c := &Conn{srv: s, hs: hs, transport: transport, handler: nopHandler{}}
	c.open.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	for {
		c.id = newID()
		if _, taken := s.conns[c.id]; !taken {
			break
		}
	}
	s.conns[c.id] = c
	s.count.Add(1)
	s.active.Add(1)
	return c
}

// newID returns a random URL-safe session id (15 random bytes, as Node's base64id).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errShuttingDown = &RequestError{Code: CodeBadRequest, Message: "Server is shutting down", Status: http.StatusServiceUnavailable}

// ServeHTTP routes polling requests, websocket upgrades and handshakes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, s.opts.Path) && r.URL.Path+"/" != s.opts.Path {
		http.NotFound(w, r)
		return
	}
	if s.opts.CORS != nil && s.applyCORS(w, r) {
		return
	}
	q := r.URL.Query()
	transport := q.Get("transport")
	if !s.opts.allows(transport) {
		s.refuse(w, r, newRequestError(CodeUnknownTransport))
		return
	}
	isWS := isWebSocketUpgrade(r)
	if isWS && transport != TransportWebSocket {
		s.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}

	if sid := q.Get("sid"); sid != "" {
		c := s.lookup(sid)
		if c == nil && !isWS && r.Method == http.MethodGet && transport == TransportPolling && s.tombs.take(sid) {
			c := &Conn{srv: s}
			_ = c.writePollResponse(w, []packet{{typ: typeNoop}})
			return
		}
		if c == nil {
			s.refuse(w, r, newRequestError(CodeUnknownSID))
			return
		}
		if isWS {
			s.upgrade(w, r, c)
			return
		}
		if c.Transport() != transport {
			// after an upgrade the polling transport is refused for this sid
			s.refuse(w, r, newRequestError(CodeBadRequest))
			return
		}
		switch r.Method {
		case http.MethodGet:
			c.servePoll(w, r)
		case http.MethodPost:
			c.servePost(w, r)
		default:
			s.refuse(w, r, newRequestError(CodeBadRequest))
		}
		return
	}

	if r.Method != http.MethodGet {
		s.refuse(w, r, newRequestError(CodeBadHandshakeMethod))
		return
	}
	if transport == TransportWebSocket && !isWS {
		s.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}
	if s.opts.AllowRequest != nil {
		if err := s.opts.AllowRequest(r); err != nil {
			e := newRequestError(CodeForbidden)
			if msg := err.Error(); msg != "" {
				e.Message = msg
			}
			s.refuse(w, r, e)
			return
		}
	}
	if q.Get("EIO") != "4" {
		s.refuse(w, r, newRequestError(CodeUnsupportedProtocol))
		return
	}
	slot, ok := s.admitHandshake(w, r)
	if !ok {
		return
	}
	defer slot.settle() // frees the slot unless a session took it
	hs := newHandshakeData(r, s.clientAddress(r))
	hs.slot = slot
	if isWS {
		s.handshakeWebSocket(w, r, hs)
	} else {
		s.handshakePolling(w, hs)
	}
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *RequestError) {
	s.log.Debug("engineio: request refused", "code", e.Code, "message", e.Message,
		"method", r.Method, "url", redactedURI(r.URL), "remote", r.RemoteAddr)
	e.write(w)
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// openPacket is the JSON of the handshake answer.
func (s *Server) openPacket(sid string, upgrades []string) packet {
	b, _ := json.Marshal(struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int64    `json:"pingInterval"`
		PingTimeout  int64    `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}{sid, upgrades, s.opts.PingInterval.Milliseconds(), s.opts.PingTimeout.Milliseconds(), s.opts.MaxPayload})
	return packet{typ: typeOpen, data: b}
}

func (s *Server) connectionHook() func(*Conn) {
	s.mu.RLock()
	fn := s.onConn
	s.mu.RUnlock()
	return fn
}

// start runs the OnConnection hook and then lets the session's timers and writer run.
func (s *Server) start(c *Conn) {
	if c.hs != nil && c.hs.slot != nil {
		c.hs.slot.taken = true // released by remove
	}
	if fn := s.connectionHook(); fn != nil {
		fn(c)
	}
	c.mu.Lock()
	c.started = true
	if c.state == stateOpen {
		c.startHeartbeatLocked()
	}
	c.flushLocked()
	c.mu.Unlock()
}

func (s *Server) handshakePolling(w http.ResponseWriter, hs *handshakeData) {
	c := s.register(hs, TransportPolling)
	if c == nil {
		errShuttingDown.write(w)
		return
	}
	s.start(c)
	if s.opts.Cookie != nil {
		w.Header().Add("Set-Cookie", s.cookie(c.id))
	}
	// The handshake answer carries the open packet only (as Node): whatever
	// OnConnection sent waits for the next GET.
	c.writePollResponse(w, []packet{s.openPacket(c.id, s.upgrades)})
}

func (s *Server) cookie(sid string) string {
	o := s.opts.Cookie
	ck := &http.Cookie{Name: o.Name, Value: sid, Path: o.Path, Domain: o.Domain,
		HttpOnly: o.HTTPOnly, Secure: o.Secure, SameSite: o.SameSite}
	if o.MaxAge > 0 {
		ck.MaxAge = int(o.MaxAge / time.Second)
	}
	return ck.String()
}

// closeTimeout bounds how long a graceful close waits for a polling client to
// come back for its close packet.
func (s *Server) closeTimeout() time.Duration {
	d := s.opts.PingInterval + s.opts.PingTimeout
	if d > 30*time.Second {
		d = 30 * time.Second
	}
	return d
}

// applyCORS sets the CORS headers and answers preflight requests (true when answered).
func (s *Server) applyCORS(w http.ResponseWriter, r *http.Request) bool {
	co := s.opts.CORS
	h := w.Header()
	origin := r.Header.Get("Origin")
	any := false
	for _, o := range co.Origins {
		if o == "*" {
			any = true
			break
		}
	}
	allowed := ""
	switch {
	case co.AllowOrigin != nil:
		if origin != "" && co.AllowOrigin(origin) {
			allowed = origin
		}
		h.Add("Vary", "Origin")
	case any && !co.Credentials:
		allowed = "*"
	case any:
		allowed = origin
		h.Add("Vary", "Origin")
	default:
		for _, o := range co.Origins {
			if o == origin {
				allowed = origin
				break
			}
		}
		h.Add("Vary", "Origin")
	}
	if allowed != "" {
		h.Set("Access-Control-Allow-Origin", allowed)
	}
	if co.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(co.ExposedHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(co.ExposedHeaders, ","))
	}
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
	if len(co.AllowedHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(co.AllowedHeaders, ","))
	} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if co.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(co.MaxAge/time.Second)))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}

type nopHandler struct{}

func (nopHandler) OnMessage(*Conn, []byte, bool) {}
func (nopHandler) OnClose(*Conn, string, error)  {}

// Close reasons, as Node's engine.io names them.
const (
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonForcedClose    = "forced close"
	ReasonParseError     = "parse error"
	ReasonServerShutdown = "server shutting down"
)

// secretParams are query parameters never written to a log: clients may pass their access token in the
// handshake query (socket.io-client's `query: { token }`).
var secretParams = []string{"token", "access_token", "auth", "authorization", "jwt", "key", "password"}

// redactedURI is the request URI for logs, with the values of secretParams replaced.
func redactedURI(u *url.URL) string {
	q := u.Query()
	changed := false
	for k := range q {
		for _, p := range secretParams {
			if strings.EqualFold(k, p) {
				q[k] = []string{"REDACTED"}
				changed = true
			}
		}
	}
	if !changed {
		return u.RequestURI()
	}
	return u.EscapedPath() + "?" + q.Encode()
}
