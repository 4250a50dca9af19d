package clienttest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/maoga/maoga/server/parser"
)

// Options configure Dial. Zero values take the defaults.
type Options struct {
	Transport string // "websocket" (default) or "polling"
	// Upgrade, with Transport "polling", upgrades the session to a
	// WebSocket once the namespace is connected, the way socket.io-client
	// does (probe "2probe"/"3probe", the pending poll ends, then "5").
	Upgrade   bool
	Path      string      // Engine.IO path, default "/socket.io/"
	Namespace string      // default "/"
	Auth      any         // CONNECT payload; must marshal to a JSON object (nil = none)
	Query     url.Values  // extra query parameters of the handshake
	Header    http.Header // extra HTTP headers of the WebSocket handshake

	// AckHandler answers events the server emits with an ack. See SetAckHandler.
	AckHandler func(event string, args []json.RawMessage) []any

	// Recover asks the server to restore a previous session (connection
	// state recovery): pass the PID and Offset of the old client.
	RecoverPID, RecoverOffset string

	// The client closes with "ping timeout" when the server sends nothing
	// for pingInterval + pingTimeout (as socket.io-client does) plus
	// PingGrace, default 1s, so a loaded test machine does not make tests
	// flaky. StrictPingTimeout drops the grace.
	PingGrace         time.Duration
	StrictPingTimeout bool

	MaxBuffered    int   // events kept per event name until Wait takes them (default 1024)
	MaxMessageSize int64 // largest WebSocket message accepted (default 64 MiB)
}

// ConnectError is returned by Dial when the server refuses the namespace
// connection with CONNECT_ERROR.
type ConnectError struct {
	Message string
	Data    json.RawMessage // nil when the server sent none
}

func (e *ConnectError) Error() string { return "clienttest: connect error: " + e.Message }

// Errors of a Client.
var (
	ErrDisconnected = errors.New("clienttest: disconnected")
	ErrReservedName = errors.New("clienttest: reserved event name")
)

// Event is one event received from the server.
type Event struct {
	Name        string
	Args        []json.RawMessage // arguments after the name; binary as base64 strings
	Data        json.RawMessage   // the packet's JSON payload as on the wire (placeholders kept)
	Attachments [][]byte          // binary attachments, in placeholder order
	AckID       int64             // parser.NoID when the server asked no ack
}

// Client is one Socket.IO connection to one namespace. Its methods are safe
// for concurrent use.
type Client struct {
	opts   Options
	nsp    string
	tr     transport
	engine string // engine.io sid
	id     string // socket id
	pid    string // recovery session id ("" when recovery is off)
	recov  bool

	pingTimeout time.Duration  // pingInterval + pingTimeout: no frame for that long is a ping timeout
	early       []enginePacket // packets received during the upgrade, for the reader

	wmu  sync.Mutex // orders packets: an event and its attachments stay together
	wbuf []byte

	mu         sync.Mutex
	queues     map[string]*queue
	handlers   map[string][]func(args []json.RawMessage)
	anyHandler []func(ev *Event)
	ackHandler func(event string, args []json.RawMessage) []any
	acks       map[int64]chan []json.RawMessage
	nextAck    int64
	offset     string
	dropped    map[string]int
	reason     string
	closeErr   error

	done       chan struct{} // closed when the connection is gone
	readerDone chan struct{}
	closeOnce  sync.Once
}

type queue struct {
	items   []*Event
	changed chan struct{} // closed and replaced on every push
}

// Dial opens a WebSocket to rawURL ("http://host:port" or "ws://host:port"),
// does the Engine.IO handshake and connects to the namespace. It returns
// once the server accepted the namespace connection, a *ConnectError when
// the server refused it, or the error that ended the attempt (ctx bounds it).
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	if opts.Path == "" {
		opts.Path = "/socket.io/"
	}
	if opts.Namespace == "" {
		opts.Namespace = "/"
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 1024
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 64 << 20
	}
	if opts.Transport == "" {
		opts.Transport = "websocket"
	}
	u, err := handshakeURL(rawURL, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:       opts,
		nsp:        opts.Namespace,
		queues:     map[string]*queue{},
		handlers:   map[string][]func([]json.RawMessage){},
		ackHandler: opts.AckHandler,
		acks:       map[int64]chan []json.RawMessage{},
		dropped:    map[string]int{},
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	switch opts.Transport {
	case "websocket":
		c.tr, err = dialWebSocket(ctx, u.String(), opts)
		if err != nil {
			return nil, err
		}
	case "polling":
		c.tr = newPollingTransport(u, opts)
	default:
		return nil, fmt.Errorf("clienttest: unknown transport %q", opts.Transport)
	}
	if err := c.handshake(ctx); err != nil {
		c.tr.close(false)
		return nil, err
	}
	if opts.Upgrade && opts.Transport == "polling" {
		if err := c.upgrade(ctx, u); err != nil {
			c.tr.close(false)
			return nil, err
		}
	}
	go c.readLoop()
	return c, nil
}

func handshakeURL(rawURL string, opts Options) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clienttest: url: %w", err)
	}
	ws := opts.Transport == "websocket"
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = map[bool]string{true: "ws", false: "http"}[ws]
	case "https", "wss":
		u.Scheme = map[bool]string{true: "wss", false: "https"}[ws]
	default:
		return nil, fmt.Errorf("clienttest: url scheme %q", u.Scheme)
	}
	u.Path = opts.Path
	q := url.Values{}
	for k, v := range opts.Query {
		q[k] = append([]string(nil), v...)
	}
	q.Set("EIO", "4")
	q.Set("transport", opts.Transport)
	u.RawQuery = q.Encode()
	return u, nil
}

// handshake reads the Engine.IO open packet, sends CONNECT and reads until
// the namespace answers. It runs before the reader goroutine exists.
func (c *Client) handshake(ctx context.Context) error {
	// ctx ends the handshake by interrupting the transport's read; the
	// errors that causes are reported as ctx.Err().
	stop := context.AfterFunc(ctx, c.tr.interrupt)
	defer stop()
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("clienttest: handshake: %w", ctx.Err())
		}
		return fmt.Errorf("clienttest: handshake: %w", err)
	}

	pkt, err := c.tr.read(time.Time{})
	if err != nil {
		return wrap(err)
	}
	msg := pkt.data
	if pkt.binary || len(msg) == 0 || msg[0] != '0' {
		return wrap(fmt.Errorf("expected open packet, got %q", msg))
	}
	var open struct {
		SID          string `json:"sid"`
		PingInterval int64  `json:"pingInterval"`
		PingTimeout  int64  `json:"pingTimeout"`
	}
	if err := json.Unmarshal(msg[1:], &open); err != nil || open.SID == "" {
		return wrap(fmt.Errorf("bad open packet %q", msg))
	}
	c.engine = open.SID
	if pt, ok := c.tr.(*pollingTransport); ok {
		pt.setSID(open.SID)
	}
	c.pingTimeout = time.Duration(open.PingInterval+open.PingTimeout) * time.Millisecond
	if !c.opts.StrictPingTimeout {
		grace := c.opts.PingGrace
		if grace <= 0 {
			grace = time.Second
		}
		c.pingTimeout += grace
	}

	var auth json.RawMessage
	if c.opts.Auth != nil || c.opts.RecoverPID != "" {
		m := map[string]json.RawMessage{}
		if c.opts.Auth != nil {
			b, err := json.Marshal(c.opts.Auth)
			if err != nil {
				return fmt.Errorf("clienttest: auth: %w", err)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("clienttest: auth must be a JSON object: %w", err)
			}
		}
		if c.opts.RecoverPID != "" {
			m["pid"], _ = json.Marshal(c.opts.RecoverPID)
			m["offset"], _ = json.Marshal(c.opts.RecoverOffset)
		}
		auth, _ = json.Marshal(m)
	}
	if err := c.writePacket(&parser.Packet{Type: parser.Connect, Nsp: c.nsp, ID: parser.NoID, Data: auth}); err != nil {
		return wrap(err)
	}

	var dec parser.Decoder
	for {
		pkt, err := c.tr.read(time.Time{})
		if err != nil {
			return wrap(err)
		}
		msg := pkt.data
		var p *parser.Packet
		switch {
		case pkt.binary:
			p, err = dec.Add(msg, true)
		case len(msg) > 0 && msg[0] == '2': // ping
			if err := c.tr.write(textPacket("3")); err != nil {
				return wrap(err)
			}
			continue
		case len(msg) > 0 && msg[0] == '1':
			return wrap(errors.New("server closed the engine"))
		case len(msg) > 0 && msg[0] == '4':
			p, err = dec.Add(msg[1:], false)
		default:
			continue
		}
		if err != nil {
			return wrap(err)
		}
		if p == nil || p.Nsp != c.nsp {
			// Packets of other namespaces, or events sent right after the
			// CONNECT answer of ours that got here first, are not expected
			// before the answer; ignore them.
			continue
		}
		switch p.Type {
		case parser.Connect:
			var ok struct {
				SID string `json:"sid"`
				PID string `json:"pid"`
			}
			if err := json.Unmarshal(p.Data, &ok); err != nil || ok.SID == "" {
				return wrap(fmt.Errorf("bad CONNECT answer %q", msg))
			}
			c.id, c.pid = ok.SID, ok.PID
			c.recov = c.pid != "" && c.pid == c.opts.RecoverPID
			if c.recov {
				c.offset = c.opts.RecoverOffset
			}
			return nil
		case parser.ConnectError:
			ce := &ConnectError{}
			var body struct {
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(p.Data, &body); err == nil {
				ce.Message, ce.Data = body.Message, body.Data
			} else {
				_ = json.Unmarshal(p.Data, &ce.Message) // v4 servers sent a bare string
			}
			return ce
		}
	}
}

// ID is the socket id the server gave this namespace connection.
func (c *Client) ID() string { return c.id }

// EngineID is the Engine.IO session id.
func (c *Client) EngineID() string { return c.engine }

// PID is the connection state recovery session id ("" when recovery is off).
func (c *Client) PID() string { return c.pid }

// Offset is the offset of the last event received (connection state recovery).
func (c *Client) Offset() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Reconnect dials rawURL again with the same options, asking the server to
// recover this client's session (its PID and the offset of the last event
// it received), as socket.io-client does after a connection loss. c should
// be disconnected already (see CloseTransport).
func (c *Client) Reconnect(ctx context.Context, rawURL string) (*Client, error) {
	opts := c.opts
	opts.RecoverPID, opts.RecoverOffset = c.PID(), c.Offset()
	return Dial(ctx, rawURL, opts)
}

// Recovered reports whether the server restored the session named in
// Options.RecoverPID.
func (c *Client) Recovered() bool { return c.recov }

// Done is closed when the connection is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

// SetAckHandler sets the function that answers events the server emits
// with an ack. It runs on the reader goroutine; what it returns is sent as
// the ack's arguments ([]byte values as binary). Returning nil sends no
// ack (the server's EmitWithAck then times out); return []any{} for an
// ack without arguments. Without a handler no ack is sent. Like On
// callbacks it must not wait for the server (no EmitWithAck, Wait or Close).
func (c *Client) SetAckHandler(fn func(event string, args []json.RawMessage) []any) {
	c.mu.Lock()
	c.ackHandler = fn
	c.mu.Unlock()
}

// On registers fn for event. It runs on the reader goroutine, in arrival
// order; it may Emit but must not wait for the server (EmitWithAck, Wait
// from inside it would block the reader). Events are queued for Wait as well.
func (c *Client) On(event string, fn func(args []json.RawMessage)) {
	c.mu.Lock()
	c.handlers[event] = append(c.handlers[event], fn)
	c.mu.Unlock()
}

// OnAny registers fn for every event (same rules as On).
func (c *Client) OnAny(fn func(ev *Event)) {
	c.mu.Lock()
	c.anyHandler = append(c.anyHandler, fn)
	c.mu.Unlock()
}

// Emit sends an event. []byte values anywhere in args travel as binary attachments.
func (c *Client) Emit(event string, args ...any) error {
	return c.emit(parser.NoID, event, args)
}

func (c *Client) emit(id int64, event string, args []any) error {
	if parser.IsReservedEvent(event) {
		return fmt.Errorf("%w: %q", ErrReservedName, event)
	}
	all := make([]any, 0, len(args)+1)
	all = append(append(all, event), args...)
	data, atts, err := parser.MarshalArgs(all...)
	if err != nil {
		return fmt.Errorf("clienttest: emit %q: %w", event, err)
	}
	return c.writePacket(&parser.Packet{Type: parser.Event, Nsp: c.nsp, ID: id, Data: data, Attachments: atts})
}

// EmitWithAck sends an event and waits for the server's ack, returning its
// arguments (binary as base64 strings). ctx bounds the wait.
func (c *Client) EmitWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	ch := make(chan []json.RawMessage, 1)
	c.mu.Lock()
	id := c.nextAck
	c.nextAck++
	c.acks[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.acks, id)
		c.mu.Unlock()
	}()
	if err := c.emit(id, event, args); err != nil {
		return nil, err
	}
	select {
	case reply := <-ch:
		return reply, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("clienttest: ack of %q: %w", event, ctx.Err())
	case <-c.done:
		select {
		case reply := <-ch:
			return reply, nil
		default:
		}
		return nil, c.disconnectedErr()
	}
}

// Wait returns the arguments of the next event named event: the oldest
// queued one, or the next to arrive. After a disconnect, queued events are
// still returned, then ErrDisconnected.
func (c *Client) Wait(ctx context.Context, event string) ([]json.RawMessage, error) {
	ev, err := c.WaitEvent(ctx, event)
	if err != nil {
		return nil, err
	}
	return ev.Args, nil
}

// WaitEvent is Wait returning the whole Event.
func (c *Client) WaitEvent(ctx context.Context, event string) (*Event, error) {
	for {
		c.mu.Lock()
		q := c.queue(event)
		if len(q.items) > 0 {
			ev := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			c.mu.Unlock()
			return ev, nil
		}
		changed := q.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("clienttest: waiting for %q: %w", event, ctx.Err())
		case <-c.done:
			c.mu.Lock()
			n := len(q.items)
			c.mu.Unlock()
			if n == 0 {
				return nil, c.disconnectedErr()
			}
		}
	}
}

// Pending returns how many events named event are queued.
func (c *Client) Pending(event string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue(event).items)
}

// Dropped returns how many events named event were dropped because more
// than Options.MaxBuffered were queued.
func (c *Client) Dropped(event string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped[event]
}

func (c *Client) queue(event string) *queue {
	q := c.queues[event]
	if q == nil {
		q = &queue{changed: make(chan struct{})}
		c.queues[event] = q
	}
	return q
}

// WaitDisconnect waits until the connection is gone and returns the
// reason, and the error behind it for transport failures.
func (c *Client) WaitDisconnect(ctx context.Context) (reason string, err error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.reason, c.closeErr
	case <-ctx.Done():
		return "", fmt.Errorf("clienttest: waiting for disconnect: %w", ctx.Err())
	}
}

func (c *Client) disconnectedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Errorf("%w (%s)", ErrDisconnected, c.reason)
}

// Close leaves the namespace (DISCONNECT packet) and closes the connection
// with reason "io client disconnect". It waits for the reader to stop, so
// it must not be called from an On/OnAny/AckHandler callback.
func (c *Client) Close() error {
	select {
	case <-c.done:
	default:
		_ = c.writePacket(&parser.Packet{Type: parser.Disconnect, Nsp: c.nsp, ID: parser.NoID})
		c.shutdownWith("io client disconnect", nil, true)
	}
	<-c.readerDone
	return nil
}

// CloseTransport drops the connection without a goodbye, as a network
// failure would (the server sees "transport close").
func (c *Client) CloseTransport() {
	c.shutdown("io client disconnect", nil)
	<-c.readerDone
}

// shutdown records the reason (first one wins) and closes the connection.
func (c *Client) shutdown(reason string, err error) { c.shutdownWith(reason, err, false) }

func (c *Client) shutdownWith(reason string, err error, graceful bool) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.reason, c.closeErr = reason, err
		c.mu.Unlock()
		close(c.done)
		c.tr.close(graceful)
	})
}

// WriteEngineText sends a raw Engine.IO text packet (e.g. "4" + a
// hand-made Socket.IO packet) for protocol tests.
func (c *Client) WriteEngineText(data string) error {
	return c.write(textPacket(data))
}

// WriteEngineBinary sends a raw binary frame (an attachment).
func (c *Client) WriteEngineBinary(data []byte) error {
	return c.write(enginePacket{binary: true, data: data})
}

// Transport names the transport in use ("websocket" or "polling").
func (c *Client) Transport() string { return c.tr.name() }

func (c *Client) write(pkts ...enginePacket) error {
	select {
	case <-c.done:
		return c.disconnectedErr()
	default:
	}
	return c.tr.write(pkts...)
}

func (c *Client) writePacket(p *parser.Packet) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	text := append(c.wbuf[:0], '4')
	text, atts := parser.AppendEncode(text, p)
	c.wbuf = text
	pkts := make([]enginePacket, 0, 1+len(atts))
	pkts = append(pkts, enginePacket{data: text})
	for _, a := range atts {
		pkts = append(pkts, enginePacket{binary: true, data: a})
	}
	return c.write(pkts...)
}

// readLoop is the reader goroutine: Engine.IO packets in, Socket.IO
// packets dispatched.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	var dec parser.Decoder
	for {
		var deadline time.Time
		if c.pingTimeout > 0 {
			deadline = time.Now().Add(c.pingTimeout)
		}
		var pkt enginePacket
		var err error
		if len(c.early) > 0 { // read over polling while upgrading
			pkt, c.early = c.early[0], c.early[1:]
		} else {
			pkt, err = c.tr.read(deadline)
		}
		if err != nil {
			var te *timeoutError
			var ce *closedError
			switch {
			case errors.As(err, &te):
				c.shutdown("ping timeout", err)
			case errors.As(err, &ce), errors.Is(err, io.EOF):
				c.shutdown("transport close", err)
			default:
				c.shutdown("transport error", err)
			}
			return
		}
		msg := pkt.data
		if pkt.binary {
			p, err := dec.Add(msg, true)
			if !c.handleDecoded(p, err) {
				return
			}
			continue
		}
		if len(msg) == 0 {
			c.shutdown("parse error", errors.New("empty engine.io packet"))
			return
		}
		switch msg[0] {
		case '2': // ping
			if err := c.write(enginePacket{data: append([]byte("3"), msg[1:]...)}); err != nil {
				c.shutdown("transport error", err)
				return
			}
		case '1': // close
			c.shutdown("transport close", nil)
			return
		case '4':
			p, err := dec.Add(msg[1:], false)
			if !c.handleDecoded(p, err) {
				return
			}
		case '6', '3': // noop, pong
		default:
			c.shutdown("parse error", fmt.Errorf("unknown engine.io packet %q", msg))
			return
		}
	}
}

// handleDecoded dispatches a packet; false when the connection ended.
func (c *Client) handleDecoded(p *parser.Packet, err error) bool {
	if err != nil {
		c.shutdown("parse error", err)
		return false
	}
	if p == nil || p.Nsp != c.nsp {
		return true
	}
	switch p.Type {
	case parser.Event:
		c.onEvent(p)
	case parser.Ack:
		args, err := argsOf(p.Data, p.Attachments)
		if err != nil {
			c.shutdown("parse error", err)
			return false
		}
		c.mu.Lock()
		ch := c.acks[p.ID]
		delete(c.acks, p.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- args
		}
	case parser.Disconnect:
		c.shutdown("io server disconnect", nil)
		return false
	case parser.ConnectError:
		var body struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(p.Data, &body)
		c.shutdown("io server disconnect", &ConnectError{Message: body.Message, Data: p.Data})
		return false
	}
	return true
}

func (c *Client) onEvent(p *parser.Packet) {
	name, err := parser.EventName(p.Data)
	if err != nil {
		c.shutdown("parse error", err)
		return
	}
	all, err := argsOf(p.Data, p.Attachments)
	if err != nil {
		c.shutdown("parse error", err)
		return
	}
	ev := &Event{Name: name, Args: all[1:], Data: p.Data, Attachments: p.Attachments, AckID: p.ID}
	c.mu.Lock()
	// With recovery on, the server appends the packet's offset as a last
	// string argument; socket.io-client strips it, so do we.
	if c.pid != "" && len(ev.Args) > 0 {
		var off string
		if json.Unmarshal(ev.Args[len(ev.Args)-1], &off) == nil {
			c.offset = off
			ev.Args = ev.Args[:len(ev.Args)-1]
		}
	}
	q := c.queue(name)
	if len(q.items) >= c.opts.MaxBuffered {
		q.items[0] = nil
		q.items = q.items[1:]
		c.dropped[name]++
	}
	q.items = append(q.items, ev)
	close(q.changed)
	q.changed = make(chan struct{})
	handlers := append([]func([]json.RawMessage){}, c.handlers[name]...)
	anyHandlers := append([]func(*Event){}, c.anyHandler...)
	ackFn := c.ackHandler
	c.mu.Unlock()

	for _, h := range anyHandlers {
		h(ev)
	}
	for _, h := range handlers {
		h(ev.Args)
	}
	if p.ID != parser.NoID && ackFn != nil {
		if reply := ackFn(name, ev.Args); reply != nil {
			data, atts, err := parser.MarshalArgs(reply...)
			if err == nil {
				err = c.writePacket(&parser.Packet{Type: parser.Ack, Nsp: c.nsp, ID: p.ID, Data: data, Attachments: atts})
			}
			_ = err // a failed write ends the connection; the reader sees it next
		}
	}
}

// argsOf splits an event/ack payload and turns placeholders into base64
// JSON strings.
func argsOf(data json.RawMessage, atts [][]byte) ([]json.RawMessage, error) {
	args, err := parser.ReconstructArgs(data, atts)
	if err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		return args, nil
	}
	for i, a := range args {
		if !strings.Contains(string(a), `"_placeholder"`) {
			continue
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(a)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		v = toBase64(v, atts)
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		args[i] = b
	}
	return args, nil
}

func toBase64(v any, atts [][]byte) any {
	switch x := v.(type) {
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph {
			if n, ok := x["num"].(json.Number); ok {
				if i, err := n.Int64(); err == nil && i >= 0 && int(i) < len(atts) {
					return base64.StdEncoding.EncodeToString(atts[i])
				}
			}
		}
		for k, e := range x {
			x[k] = toBase64(e, atts)
		}
	case []any:
		for i, e := range x {
			x[i] = toBase64(e, atts)
		}
	}
	return v
}

// DialMany opens n clients concurrently (at most 32 handshakes at a time).
// On any failure it closes the ones it opened and returns the failures
// joined (errors.As finds a *ConnectError among them).
func DialMany(ctx context.Context, n int, rawURL string, opts Options) ([]*Client, error) {
	clients := make([]*Client, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i], errs[i] = Dial(ctx, rawURL, opts)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return clients, nil
}

// CloseAll closes every client.
func CloseAll(clients []*Client) {
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
}
