package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/parser"
)

// client is one engine.io connection, multiplexing sockets of several namespaces.
type client struct {
	srv  *Server
	conn *engineio.Conn
	dec  parser.Decoder // used only by OnMessage, which the engine never calls concurrently

	mu         sync.Mutex
	sockets    []*Socket       // connected sockets, one per namespace (few: a slice, not a map)
	connecting map[string]bool // namespaces with a CONNECT in progress
	timer      *time.Timer     // connect timeout; nil once a namespace is joined
	closed     bool

	// Attachment timer (Limits.AttachmentTimeout): armed while dec holds a binary packet waiting
	// for attachments. attGen tells a firing that was overtaken by progress from a real one.
	attTimer *time.Timer
	attGen   uint64
	attArmed bool // OnMessage only
}

// socketLocked returns the connected socket of namespace name, or nil.
func (c *client) socketLocked(name string) *Socket {
	for _, s := range c.sockets {
		if s.nsp.name == name {
			return s
		}
	}
	return nil
}

// setSocketLocked makes s the connected socket of its namespace.
func (c *client) setSocketLocked(s *Socket) {
	for i, o := range c.sockets {
		if o.nsp.name == s.nsp.name {
			c.sockets[i] = s
			return
		}
	}
	c.sockets = append(c.sockets, s)
}

func (s *Server) onEngineConnection(c *engineio.Conn) {
	cl := &client{srv: s, conn: c}
	cl.dec.MaxAttachments = s.limits.MaxAttachments
	cl.dec.MaxDepth = s.limits.MaxNestingDepth
	c.SetHandler(cl)
	cl.mu.Lock()
	cl.timer = time.AfterFunc(s.opts.ConnectTimeout, cl.onConnectTimeout)
	cl.mu.Unlock()
}

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	idle := !c.closed && len(c.sockets) == 0
	c.mu.Unlock()
	if idle {
		c.conn.Close("forced close")
	}
}

// send queues an encoded packet on the engine connection.
func (c *client) send(enc *adapter.Encoded, volatile bool) {
	if h := c.srv.transportHook; h != nil {
		h(c, enc)
	}
	if len(enc.Attachments) == 0 {
		// The common case without a slice allocation per receiver.
		if volatile {
			c.conn.SendVolatile(engineio.Message{Data: enc.Text})
		} else {
			_ = c.conn.Send(engineio.Message{Data: enc.Text})
		}
		return
	}
	msgs := messagesOf(enc)
	if volatile {
		c.conn.SendVolatile(msgs...)
		return
	}
	// A failed Send means the connection is closing or overflowed: the engine closes it and OnClose
	// tells every socket, so there is nothing more to do here.
	_ = c.conn.Send(msgs...)
}

func (c *client) sendPacket(p *parser.Packet) {
	c.send(adapter.Encode(p), false)
}

// sendReply sends an ack: written at once by the calling goroutine when the connection has nothing
// being written (engineio.Conn.SendNow), so the reply does not wait for a writer goroutine to start.
func (c *client) sendReply(p *parser.Packet) {
	enc := adapter.Encode(p)
	if len(enc.Attachments) == 0 {
		_ = c.conn.SendNow(engineio.Message{Data: enc.Text})
		return
	}
	_ = c.conn.SendNow(messagesOf(enc)...)
}

// messagesOf is an encoded packet with attachments as engine messages: the text, then each binary.
func messagesOf(enc *adapter.Encoded) []engineio.Message {
	msgs := make([]engineio.Message, 1+len(enc.Attachments))
	msgs[0] = engineio.Message{Data: enc.Text}
	for i, a := range enc.Attachments {
		msgs[i+1] = engineio.Message{Data: a, Binary: true}
	}
	return msgs
}

// OnMessage implements engineio.Handler.
func (c *client) OnMessage(_ *engineio.Conn, data []byte, binary bool) {
	p, err := c.dec.Add(data, binary)
	if err != nil {
		c.attachmentsDone()
		c.srv.log.Debug("socketio: invalid packet", "conn", c.conn.ID(), "err", err)
		c.conn.Close("parse error")
		return
	}
	if p == nil {
		c.awaitAttachments() // bounded by Limits.AttachmentTimeout
		return
	}
	c.attachmentsDone()
	c.dispatch(p)
}

func (c *client) dispatch(p *parser.Packet) {
	c.mu.Lock()
	sock := c.socketLocked(p.Nsp)
	pending := c.connecting[p.Nsp]
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	switch {
	case p.Type == parser.Connect && sock == nil:
		if pending {
			return // a second CONNECT while the first runs its middlewares: the first answers
		}
		if !c.admitNamespace(p.Nsp) {
			return // over Limits.MaxNamespacesPerClient (limits.go)
		}
		auth := p.Data
		if len(bytes.TrimSpace(auth)) == 0 {
			auth = json.RawMessage("{}")
		} else if t := bytes.TrimSpace(auth); t[0] != '{' {
			c.conn.Close("parse error")
			return
		}
		c.mu.Lock()
		if c.connecting == nil {
			c.connecting = make(map[string]bool)
		}
		c.connecting[p.Nsp] = true
		c.mu.Unlock()
		go c.connect(p.Nsp, append(json.RawMessage(nil), auth...))
	case sock != nil && p.Type != parser.Connect && p.Type != parser.ConnectError:
		sock.onPacket(p)
	default:
		// Node: "invalid state" (a packet for a namespace not joined, a second CONNECT, a CONNECT_ERROR).
		c.srv.log.Debug("socketio: packet in invalid state", "conn", c.conn.ID(), "nsp", p.Nsp, "type", p.Type)
		c.conn.Close("forced close")
	}
}

// connect runs the CONNECT of one namespace: lookup, recovery, middlewares, then the connection.
func (c *client) connect(name string, auth json.RawMessage) {
	defer func() {
		c.mu.Lock()
		delete(c.connecting, name)
		if len(c.connecting) == 0 {
			c.connecting = nil
		}
		c.mu.Unlock()
	}()
	c.srv.mu.RLock()
	closing := c.srv.closing
	c.srv.mu.RUnlock()
	if closing {
		return // Close is disconnecting everyone; the engine closes this connection too
	}
	nsp := c.srv.lookup(name, auth)
	if nsp == nil {
		c.sendConnectError(name, "Invalid namespace", nil)
		return
	}
	var session *adapter.Session
	var offset string
	if nsp.recovery() > 0 {
		var creds struct {
			PID    *string `json:"pid"`
			Offset *string `json:"offset"`
		}
		if json.Unmarshal(auth, &creds) == nil && creds.PID != nil && creds.Offset != nil {
			var err error
			offset = *creds.Offset
			session, err = nsp.adapter.RestoreSession(*creds.PID, *creds.Offset)
			if err != nil {
				c.srv.log.Warn("socketio: restoring session", "nsp", name, "err", err)
				session = nil
			}
		}
	}
	sock := newSocket(nsp, c, auth, session)
	if session != nil {
		sock.recoveryOffset = offset
	}
	skip := session != nil && c.srv.opts.ConnectionStateRecovery != nil && !c.srv.opts.ConnectionStateRecovery.RunMiddlewares
	refuse := func(err error) {
		var ce *ConnectError
		if errors.As(err, &ce) {
			c.sendConnectError(name, ce.Message, ce.Data)
		} else {
			c.sendConnectError(name, err.Error(), nil)
		}
	}
	if !skip {
		if err := nsp.runMiddlewares(sock); err != nil {
			refuse(err)
			return
		}
	}
	if session != nil && !nsp.acceptRecovery(sock, session) {
		// Declined: a fresh session instead (the restored one is consumed either way).
		sock.startAfresh()
		session = nil
		if skip {
			sock.SetData(nil) // the restored data goes with the session
			if err := nsp.runMiddlewares(sock); err != nil {
				refuse(err)
				return
			}
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.setSocketLocked(sock)
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	nsp.connect(sock, session)
}

func (c *client) sendConnectError(nsp, message string, data any) {
	payload := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{message, data}
	raw, err := json.Marshal(payload)
	if err != nil {
		c.srv.log.Error("socketio: marshal connect error data", "nsp", nsp, "err", err)
		raw, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{message})
	}
	c.sendPacket(&parser.Packet{Type: parser.ConnectError, Nsp: nsp, ID: parser.NoID, Data: raw})
}

// remove forgets a socket that left its namespace; the engine connection stays open.
func (c *client) remove(s *Socket) {
	c.mu.Lock()
	if i := slices.Index(c.sockets, s); i >= 0 {
		c.sockets = slices.Delete(c.sockets, i, i+1)
	}
	c.mu.Unlock()
}

// OnClose implements engineio.Handler.
func (c *client) OnClose(_ *engineio.Conn, reason string, _ error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.attTimer != nil {
		c.attTimer.Stop()
		c.attTimer = nil
	}
	socks := slices.Clone(c.sockets)
	c.mu.Unlock()
	for _, s := range socks {
		s.onClose(reason)
	}
}

// disconnectAll is Socket.Disconnect(true): every socket of the connection leaves its namespace
// ("server namespace disconnect"), then the engine connection closes.
func (c *client) disconnectAll() {
	c.mu.Lock()
	socks := slices.Clone(c.sockets)
	c.mu.Unlock()
	for _, s := range socks {
		s.disconnect(false)
	}
	c.conn.Close("forced close")
}
