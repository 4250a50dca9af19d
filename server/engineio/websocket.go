package engineio

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

const (
	closeNormal      = ws.StatusNormalClosure
	closeProtocol    = ws.StatusProtocolError
	closeTooBig      = ws.StatusMessageTooBig
	closeInvalidData = ws.StatusInvalidFramePayloadData
)

var (
	errWSProtocol = errors.New("engineio: websocket protocol error")
	errWSUTF8     = errors.New("engineio: invalid UTF-8 in websocket text frame")
	errWSClosed   = errors.New("engineio: websocket closed by peer")
)

// wsConn is one websocket connection. Reads happen on one goroutine (the
// reader); writes (writer batches, pongs, close frames) are serialized by wmu.
type wsConn struct {
	conn    net.Conn
	src     io.Reader // conn, or the bytes buffered during the HTTP upgrade first
	peek    [1]byte
	peeked  bool
	deflate bool
	rhdr    [ws.MaxHeaderSize]byte // reader's header scratch

	wmu     sync.Mutex
	whdr    [ws.MaxHeaderSize]byte // writer's header scratch
	closed  bool                   // close frame sent (under wmu)
	timeout time.Duration

	lingering atomic.Bool // the reader closes the conn itself after draining

	early []byte      // bytes read with the upgrade request, until a reader takes them
	ep    *epollState // ReadModeEpoll: the read state (nil with the goroutine reader)
}

var bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// acceptWebSocket upgrades the request; on failure the upgrader has answered.
func (s *Server) acceptWebSocket(w http.ResponseWriter, r *http.Request, header http.Header) (*wsConn, error) {
	u := ws.HTTPUpgrader{Timeout: s.opts.WriteTimeout, Header: header}
	var ext *wsflate.Extension
	if s.deflate != nil {
		ext = &wsflate.Extension{Parameters: wsflate.DefaultParameters}
		u.Negotiate = ext.Negotiate
	}
	conn, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		s.log.Debug("engineio: websocket upgrade failed", "err", err, "remote", r.RemoteAddr)
		return nil, err
	}
	wc := &wsConn{conn: conn, src: conn, timeout: s.opts.WriteTimeout}
	if n := rw.Reader.Buffered(); n > 0 {
		// The client pipelined frames behind its upgrade request: read them first.
		early, _ := rw.Reader.Peek(n)
		wc.early = append([]byte(nil), early...)
		wc.src = io.MultiReader(bytesReader(wc.early), conn)
	}
	if ext != nil {
		_, wc.deflate = ext.Accepted()
	}
	wc.ep = s.newEpollState(wc)
	return wc, nil
}

type byteSliceReader struct{ b []byte }

func bytesReader(b []byte) *byteSliceReader { return &byteSliceReader{b} }

func (r *byteSliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (s *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request, hs *handshakeData) {
	s.mu.RLock()
	closing := s.closing
	s.mu.RUnlock()
	if closing {
		errShuttingDown.write(w)
		return
	}
	// The sid is only known after the upgrade succeeded, so the sticky cookie
	// (if any) names an id chosen here and used for the session below.
	var header http.Header
	id := ""
	if s.opts.Cookie != nil {
		id = newID()
		header = http.Header{"Set-Cookie": {s.cookie(id)}}
	}
	wc, err := s.acceptWebSocket(w, r, header)
	if err != nil {
		return
	}
	c := s.registerWithID(hs, TransportWebSocket, id)
	if c == nil {
		wc.closeWith(ws.StatusGoingAway)
		return
	}
	c.ws = wc
	c.queue = append(c.queue, s.openPacket(c.id, []string{}))
	s.start(c)
	s.startReader(c, wc, false)
}

// registerWithID registers a session under id when id is free (else a new one).
func (s *Server) registerWithID(hs *handshakeData, transport, id string) *Conn {
	if id == "" {
		return s.register(hs, transport)
	}
	c := &Conn{srv: s, hs: hs, transport: transport, handler: nopHandler{}, id: id}
	c.open.Store(true)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	if _, taken := s.conns[id]; taken {
		s.mu.Unlock()
		return s.register(hs, transport)
	}
	s.conns[id] = c
	s.count.Add(1)
	s.active.Add(1)
	s.mu.Unlock()
	return c
}

// upgrade accepts a websocket for an existing polling session and starts the
// probe: "2probe" → "3probe", pending GET answered with noop, then "5" switches.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, c *Conn) {
	if s.opts.DisableUpgrades {
		s.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}
	wc, err := s.acceptWebSocket(w, r, nil)
	if err != nil {
		return
	}
	c.mu.Lock()
	if c.state != stateOpen || c.transport != TransportPolling || c.probe != nil || c.upgraded {
		c.mu.Unlock()
		// As Node: a second upgrade attempt, or one for a closing session, is closed.
		wc.closeWith(closeNormal)
		return
	}
	c.probe = wc
	c.upgradeTimer = time.AfterFunc(s.opts.UpgradeTimeout, func() { c.abortProbe(wc) })
	c.mu.Unlock()
	s.startReader(c, wc, true)
}

func (c *Conn) abortProbe(wc *wsConn) {
	c.mu.Lock()
	if c.probe == wc {
		c.probe = nil
		c.probed = false
		c.stopTimerLocked(&c.upgradeTimer)
	}
	c.mu.Unlock()
	wc.closeWith(closeNormal)
}

func (c *Conn) onProbe(wc *wsConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe != wc || c.state == stateClosed {
		return false
	}
	c.probed = true
	if c.poll != nil {
		// The client pauses polling once it has the probe answer: end its pending
		// GET shortly, as Node's upgrade check does. Waiting the interval (rather
		// than answering now) keeps a GET that raced ahead of a quick "5" from
		// being answered 200 after all.
		c.endPollSoon(c.poll)
	}
	return true
}

// completeUpgrade makes wc the session's transport.
func (c *Conn) completeUpgrade(wc *wsConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe != wc || c.state == stateClosed {
		return false
	}
	c.stopTimerLocked(&c.upgradeTimer)
	c.probe = nil
	c.probed = false
	c.upgraded = true
	c.transport = TransportWebSocket
	c.ws = wc
	if pw := c.poll; pw != nil {
		// A client completes the upgrade only after its last GET ended; a GET
		// still pending here raced with the upgrade and is refused like any
		// polling request after it.
		pw.refuse = true
		c.answerPollLocked(nil, nil)
	}
	if c.state == stateClosing {
		c.queue = append(c.queue, packet{typ: typeClose})
	}
	c.flushLocked()
	return true
}

// startReader starts reading wc: the epoll reader when the server uses it
// and it can take wc, otherwise a goroutine running readLoop.
func (s *Server) startReader(c *Conn, wc *wsConn, probing bool) {
	if s.startEpollReader(c, wc, probing) {
		return
	}
	wc.early = nil
	go c.readLoop(wc, probing)
}

// readLoop is the one goroutine reading wc (ReadModeGoroutine, and conns the
// epoll reader cannot take). While probing it only accepts the upgrade
// handshake; afterwards it feeds packets to the session.
func (c *Conn) readLoop(wc *wsConn, probing bool) {
	max := c.srv.opts.MaxPayload
	var scratch []byte
	for {
		err := wc.waitReadable()
		var op ws.OpCode
		var msg []byte
		var buf *[]byte
		if err == nil {
			op, msg, buf, err = wc.readMessage(max, c.srv.deflate)
		}
		if err != nil {
			putBuf(buf)
			c.readError(wc, probing, err)
			return
		}
		ok := c.onWSMessage(wc, op, msg, &probing, &scratch)
		putBuf(buf)
		if !ok {
			return
		}
	}
}

// readError ends the probe or the session after a read error on wc.
func (c *Conn) readError(wc *wsConn, probing bool, err error) {
	if probing {
		c.abortProbe(wc)
	} else {
		c.readFailed(wc, err)
	}
}

// onWSMessage handles one complete data message read from wc (both read
// modes). While *probing it only accepts the upgrade handshake. It reports
// false when reading must stop (probe aborted or session ended by it).
func (c *Conn) onWSMessage(wc *wsConn, op ws.OpCode, msg []byte, probing *bool, scratch *[]byte) bool {
	if *probing {
		ok := false
		if op == ws.OpText {
			switch string(msg) {
			case "2probe":
				ok = c.onProbe(wc) && wc.writeText("3probe") == nil
			case "5":
				ok = c.completeUpgrade(wc)
				*probing = false
			}
		}
		if !ok {
			c.abortProbe(wc)
		}
		return ok
	}
	if op == ws.OpBinary {
		c.onPacket(packet{typ: typeMessage, data: msg, binary: true})
	} else {
		p, err := decodePacket(msg, scratch)
		if err != nil {
			c.readFailed(wc, err)
			return false
		}
		c.onPacket(p)
	}
	if cap(*scratch) > maxPooledBuf {
		*scratch = nil
	}
	return true
}

// readFailed ends the session after the reader's error err, with Node's reason.
// The error paths live here so that no closure in readLoop makes its
// variables escape to the heap on every message.
func (c *Conn) readFailed(wc *wsConn, err error) {
	reason, code := ReasonTransportError, closeNormal
	switch {
	case errors.Is(err, errParse):
		reason = ReasonParseError
	case errors.Is(err, ErrPayloadTooBig):
		code = closeTooBig
		c.srv.log.Warn("engineio: message over maxPayload refused", "sid", c.id, "remote", c.remoteAddr(),
			"transport", TransportWebSocket, "maxPayload", c.srv.opts.MaxPayload)
	case errors.Is(err, errWSProtocol):
		code = closeProtocol
	case errors.Is(err, errWSUTF8):
		code = closeInvalidData
	default:
		// peer closed (close frame, EOF, reset) or the session closed the conn
		c.finish(ReasonTransportClose, nil)
		wc.closeConn()
		return
	}
	wc.lingerClose(code, func() { c.finish(reason, err) })
}

// waitReadable blocks until the next frame starts, reading its first byte
// into wc.peek. An idle session's reader waits here, in a short call chain,
// so its goroutine stack stays at the 2 KB minimum (the GC shrinks it back
// after a message needed more).
//
//go:noinline
func (wc *wsConn) waitReadable() error {
	if wc.peeked {
		return nil
	}
	for {
		n, err := wc.src.Read(wc.peek[:])
		if n == 1 {
			wc.peeked = true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Read makes wc the reader of frames: the peeked byte first, then src.
func (wc *wsConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if wc.peeked {
		wc.peeked = false
		p[0] = wc.peek[0]
		return 1, nil
	}
	return wc.src.Read(p)
}

// readMessage reads one data message, answering pings and close frames on the
// way. The message is in a pooled buffer (returned as buf) that the caller puts back.
func (wc *wsConn) readMessage(max int, d *deflater) (op ws.OpCode, msg []byte, buf *[]byte, err error) {
	compressed := false
	started := false
	for {
		h, err := ws.ReadHeaderBuffer(wc, wc.rhdr[:])
		if err != nil {
			return 0, nil, buf, err
		}
		if !h.Masked {
			// RFC 6455 §5.1: a server must close on an unmasked client frame (Node's ws answers 1002 too).
			return 0, nil, buf, errWSProtocol
		}
		if h.OpCode.IsControl() {
			if err := wc.handleControl(h); err != nil {
				return 0, nil, buf, err
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && !started,
			h.OpCode != ws.OpContinuation && started,
			h.OpCode.IsReserved():
			return 0, nil, buf, errWSProtocol
		}
		if !started {
			started = true
			op = h.OpCode
			if h.Rsv1() {
				if d == nil || !wc.deflate {
					return 0, nil, buf, errWSProtocol
				}
				compressed = true
			}
			if h.Rsv&^0x4 != 0 {
				return 0, nil, buf, errWSProtocol
			}
			buf = getBuf()
			msg = (*buf)[:0]
		} else if h.Rsv != 0 {
			return 0, nil, buf, errWSProtocol
		}
		if h.Length > int64(max-len(msg)) {
			return 0, nil, buf, ErrPayloadTooBig
		}
		n := len(msg)
		msg = growLen(msg, int(h.Length))
		*buf = msg
		if _, err := io.ReadFull(wc, msg[n:]); err != nil {
			return 0, nil, buf, err
		}
		if h.Masked {
			ws.Cipher(msg[n:], h.Mask, 0)
		}
		if !h.Fin {
			continue
		}
		if compressed {
			out := getBuf()
			plain, err := d.decompress((*out)[:0], msg)
			*out = plain
			putBuf(buf)
			buf = out
			if err != nil {
				return 0, nil, buf, err
			}
			msg = plain
		}
		if op == ws.OpText && !utf8.Valid(msg) {
			return 0, nil, buf, errWSUTF8
		}
		return op, msg, buf, nil
	}
}

// handleControl reads a control frame's payload and answers it. It is kept
// out of readMessage so that the reader's stack stays small while it waits.
//
//go:noinline
func (wc *wsConn) handleControl(h ws.Header) error {
	if h.Length > 125 || !h.Fin || h.Rsv != 0 {
		return errWSProtocol
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(wc, p); err != nil {
		return err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return wc.answerControl(h.OpCode, p)
}

// answerControl answers a control frame with (unmasked) payload p: a ping
// with a pong, a close with a close (errWSClosed: reading ends).
func (wc *wsConn) answerControl(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		return wc.writeControl(ws.OpPong, p)
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(p)
		if code.Empty() {
			code = closeNormal
		}
		wc.closeWith(code)
		return errWSClosed
	}
	return nil
}

// growLen extends b by n bytes, reallocating when needed.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

func (wc *wsConn) writeControl(op ws.OpCode, p []byte) error {
	wc.wmu.Lock()
	defer wc.wmu.Unlock()
	if wc.closed {
		return net.ErrClosed
	}
	_ = wc.conn.SetWriteDeadline(time.Now().Add(wc.timeout))
	return ws.WriteFrame(wc.conn, ws.NewFrame(op, true, p))
}

func (wc *wsConn) writeText(s string) error {
	return wc.writeControl(ws.OpText, []byte(s))
}

// closeWith sends a close frame (unless a write is stuck, or it was sent) and
// closes the connection.
func (wc *wsConn) closeWith(code ws.StatusCode) {
	wc.sendClose(code)
	if !wc.lingering.Load() {
		wc.closeConn()
	}
}

// closeLockWait bounds how long a close frame waits for a batch being written:
// a healthy writer finishes in microseconds, a stuck one (slow consumer, until
// its write deadline) must not hold the close up.
const closeLockWait = 200 * time.Millisecond

func (wc *wsConn) sendClose(code ws.StatusCode) {
	if lockWithin(&wc.wmu, closeLockWait) {
		if !wc.closed {
			wc.closed = true
			_ = wc.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = ws.WriteFrame(wc.conn, ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
		}
		wc.wmu.Unlock()
	}
}

// lockWithin takes mu if it can within d (polling: the close path is rare).
func lockWithin(mu *sync.Mutex, d time.Duration) bool {
	if mu.TryLock() {
		return true
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		if mu.TryLock() {
			return true
		}
	}
	return false
}

// lingerClose is closeWith for the reader after a protocol error: unread
// input would make the kernel reset the connection and the peer could lose
// the close frame, so the input is drained (bounded) until the peer closes.
// finish is what the session does meanwhile (OnClose is not delayed).
func (wc *wsConn) lingerClose(code ws.StatusCode, finish func()) {
	wc.lingering.Store(true)
	wc.sendClose(code)
	finish()
	if tc, ok := wc.conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = wc.conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, wc, 1<<20)
	wc.closeConn()
}

// maxKeptBatch bounds the capacity (in packets) of the queue slices a session
// keeps between bursts. Dropping a slice at every writer exit once it outgrew
// 16 made a busy receiver (fan-out with bursts of 16+) regrow its queue from
// scratch on every burst; the slices of an idle session are dropped at its
// next heartbeat instead (onHeartbeat).
const maxKeptBatch = 64

// writeLoop drains the session queue to wc. It is started when packets are
// queued on an idle websocket and exits as soon as the queue is empty, so an
// idle session has no writer goroutine.
func (c *Conn) writeLoop(wc *wsConn) { c.drain(wc, -1) }

// drain writes the queue to wc in batches (at most maxBatches when ≥ 0: then
// a writer goroutine takes over what is left). The caller has set c.writing.
func (c *Conn) drain(wc *wsConn, maxBatches int) {
	var bw *bufio.Writer
	defer func() {
		if bw != nil {
			bw.Reset(nil)
			bufWriterPool.Put(bw)
		}
	}()
	for {
		c.mu.Lock()
		if c.state == stateClosed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			closing, reason := c.state == stateClosing, c.closeReason
			if cap(c.spare) > maxKeptBatch {
				c.spare = nil
			}
			c.mu.Unlock()
			if closing {
				c.finish(reason, nil)
			}
			return
		}
		if maxBatches == 0 {
			c.mu.Unlock()
			go c.writeLoop(wc) // c.writing stays set: the writer goroutine takes over
			return
		}
		maxBatches--
		batch := c.takeQueueLocked()
		c.queue = c.spare[:0]
		c.spare = nil
		c.mu.Unlock()

		if bw == nil {
			bw = bufWriterPool.Get().(*bufio.Writer)
			bw.Reset(wc.conn)
		}
		err := wc.writeBatch(bw, batch, c.srv.deflate)
		signalSent(batch)
		clear(batch) // drop references to message data
		c.mu.Lock()
		if c.spare == nil && cap(batch) <= maxKeptBatch {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		if err != nil {
			c.finish(ReasonTransportError, err)
			return
		}
	}
}

func (wc *wsConn) writeBatch(bw *bufio.Writer, batch []packet, d *deflater) error {
	wc.wmu.Lock()
	defer wc.wmu.Unlock()
	if wc.closed {
		return net.ErrClosed
	}
	if err := wc.conn.SetWriteDeadline(time.Now().Add(wc.timeout)); err != nil {
		return err
	}
	for _, p := range batch {
		if err := wc.writePacket(bw, p, d); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func (wc *wsConn) writePacket(bw *bufio.Writer, p packet, d *deflater) error {
	op, n := ws.OpText, 1+len(p.data)
	if p.binary {
		op, n = ws.OpBinary, len(p.data)
	}
	if wc.deflate && d != nil && n >= d.threshold {
		out := getBuf()
		defer putBuf(out)
		var prefix []byte
		if !p.binary {
			prefix = []byte{p.typ}
		}
		comp, err := d.compress((*out)[:0], prefix, p.data)
		*out = comp
		if err != nil {
			return err
		}
		h := ws.Header{Fin: true, OpCode: op, Rsv: ws.Rsv(true, false, false), Length: int64(len(comp))}
		if err := ws.WriteHeaderBuffer(bw, h, wc.whdr[:]); err != nil {
			return err
		}
		_, err = bw.Write(comp)
		return err
	}
	h := ws.Header{Fin: true, OpCode: op, Length: int64(n)}
	if err := ws.WriteHeaderBuffer(bw, h, wc.whdr[:]); err != nil {
		return err
	}
	if !p.binary {
		if err := bw.WriteByte(p.typ); err != nil {
			return err
		}
	}
	_, err := bw.Write(p.data)
	return err
}
