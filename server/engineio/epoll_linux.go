//go:build linux

package engineio

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// The epoll reader (ReadModeEpoll). An idle websocket session has no
// goroutine: its socket is registered, level-triggered and one-shot, in the
// epoll set of one of a few pollers. When it becomes readable a worker of
// the poller (see poller.work) reads what the socket has without blocking,
// handles every complete frame, keeps the bytes of a partial frame (only
// then) and re-arms the registration. One-shot arming
// means at most one goroutine reads a session at a time, in order, as the
// goroutine reader does.
//
// The poller's own epoll descriptor is registered in Go's network poller
// (os.NewFile on a non-blocking descriptor), so a leader waiting for events is
// a parked goroutine, not a thread blocked in epoll_wait.
//
// The socket stays an ordinary net.Conn: writes, write deadlines and Close go
// through it, and reads go through its syscall.RawConn, so a read never races
// with the descriptor being closed (or reused). Closing the socket removes it
// from the epoll set; closeConn also forgets its registration.

const epollSupported = true

// epollReadSize is the size of the pooled read buffers.
const epollReadSize = 4096

var epollReadPool = sync.Pool{New: func() any { b := make([]byte, 0, epollReadSize); return &b }}

type poller struct {
	epfd  int
	file  *os.File
	rc    syscall.RawConn
	mu    sync.Mutex
	conns map[uint64]*epollState
	next  uint64
	jobs  chan pollJob // to an idle worker of this poller (unbuffered: taken only if one waits)
}

// pollJob is what a worker is handed: a socket to serve, or the leadership.
type pollJob struct {
	st   *epollState
	lead bool
}

// workerIdle is how long an idle worker waits for work before it exits.
const workerIdle = 5 * time.Second

var (
	pollersOnce sync.Once
	pollers     []*poller
	pollersErr  error
	pollerNext  uint32
	pollerMu    sync.Mutex
)

func startPollers() {
	n := runtime.GOMAXPROCS(0)
	if n > 4 {
		n = 4
	}
	for i := 0; i < n; i++ {
		p, err := newPoller()
		if err != nil {
			pollersErr = err
			return
		}
		pollers = append(pollers, p)
		go p.work(pollJob{lead: true})
	}
}

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &poller{epfd: fd, file: f, rc: rc, conns: make(map[uint64]*epollState), jobs: make(chan pollJob)}, nil
}

// pickPoller returns the poller for a new registration (round robin).
func pickPoller() *poller {
	pollersOnce.Do(startPollers)
	if pollersErr != nil || len(pollers) == 0 {
		return nil
	}
	pollerMu.Lock()
	pollerNext++
	p := pollers[int(pollerNext)%len(pollers)]
	pollerMu.Unlock()
	return p
}

// work is a worker of p (leader/followers). The leader waits for readable
// sockets; when some are, it hands each but the last to an idle worker (or a
// new one), hands the leadership on the same way, and serves the last socket
// itself, so a lone message is read without waiting for another goroutine
// to be scheduled. A worker then waits, idle, for a socket or the leadership,
// and exits after workerIdle without any. Workers are reused so that their
// stacks, grown by the handlers, do not have to grow again for every message.
func (p *poller) work(j pollJob) {
	var idle *time.Timer
	for {
		st := j.st
		if j.lead {
			st = p.lead()
		}
		st.serve()
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case j = <-p.jobs:
			idle.Stop()
		case <-idle.C:
			return
		}
	}
}

// hand gives j to an idle worker, or to a new one.
func (p *poller) hand(j pollJob) {
	select {
	case p.jobs <- j:
	default:
		go p.work(j)
	}
}

// lead waits for readable sockets, hands all but one (and the leadership)
// on, and returns the one left.
func (p *poller) lead() *epollState {
	var events [64]syscall.EpollEvent
	var ready [len(events)]*epollState
	for {
		var n int
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), events[:], 0)
			if werr == syscall.EINTR {
				werr = nil
				return false
			}
			return n > 0 || werr != nil
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			// Cannot happen short of a kernel or runtime failure: the sessions of this
			// poller would hang, so make it loud.
			panic("engineio: epoll wait: " + err.Error())
		}
		k := 0
		p.mu.Lock()
		for i := 0; i < n; i++ {
			key := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if st := p.conns[key]; st != nil {
				ready[k] = st
				k++
			}
		}
		p.mu.Unlock()
		if k == 0 {
			continue
		}
		for _, st := range ready[:k-1] {
			p.hand(pollJob{st: st})
		}
		p.hand(pollJob{lead: true})
		return ready[k-1]
	}
}

// epollState is the read state of a websocket in ReadModeEpoll.
type epollState struct {
	c       *Conn
	wc      *wsConn
	rc      syscall.RawConn
	p       *poller
	key     uint64
	armed   bool    // registered in p's epoll set (only the reading goroutine changes it)
	probing bool    // an upgrade probe: only the probe handshake is accepted
	pending *[]byte // bytes of a partial frame kept between readable events
	frag    *wsFrag // a fragmented message being assembled
}

// wsFrag is a message whose first frames arrived and whose final one has not.
type wsFrag struct {
	op         ws.OpCode
	compressed bool
	buf        *[]byte
}

// newEpollState prepares wc for the epoll reader when the server uses it and
// wc is a plain TCP socket (not TLS); it is set before wc is shared.
func (s *Server) newEpollState(wc *wsConn) *epollState {
	if s.opts.ReadMode != ReadModeEpoll {
		return nil
	}
	tc, ok := wc.conn.(*net.TCPConn)
	if !ok {
		return nil // TLS and other wrapped conns: their bytes are not the socket's
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	p := pickPoller()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.next++
	key := p.next
	p.mu.Unlock()
	return &epollState{rc: rc, p: p, key: key}
}

// startEpollReader hands wc to its poller; false when it cannot (the caller
// then starts the goroutine reader).
func (s *Server) startEpollReader(c *Conn, wc *wsConn, probing bool) bool {
	st := wc.ep
	if st == nil {
		return false
	}
	st.c, st.wc, st.probing = c, wc, probing
	early := wc.early
	wc.early = nil
	wc.src = wc.conn // early bytes go to the parser (lingerClose still reads through wc.Read)
	if len(early) > 0 {
		b := epollReadPool.Get().(*[]byte)
		*b = append((*b)[:0], early...)
		st.pending = b
	}
	// Registered before it is armed, forgotten after the socket is closed
	// (closeConn): whichever comes first, no registration outlives the socket.
	st.p.mu.Lock()
	st.p.conns[st.key] = st
	st.p.mu.Unlock()
	if st.pending != nil {
		// Frames pipelined behind the upgrade request: handle them first; serve arms afterwards.
		go st.serve()
		return true
	}
	closed, err := st.arm()
	if closed {
		// Closed already: the session is being finished by whoever closed it.
		st.p.forget(st.key)
	} else if err != nil {
		st.p.forget(st.key)
		s.log.Warn("engineio: epoll refused a websocket, reading it with a goroutine", "err", err)
		go c.readLoop(wc, probing)
	}
	return true
}

func (p *poller) forget(key uint64) {
	p.mu.Lock()
	delete(p.conns, key)
	p.mu.Unlock()
}

// arm (re)registers the socket for one readable event. closed: the socket
// was closed (nothing to do); err: epoll refused it (the socket is open but
// cannot be watched, e.g. fs.epoll.max_user_watches reached).
func (st *epollState) arm() (closed bool, err error) {
	op := syscall.EPOLL_CTL_MOD
	if !st.armed {
		op = syscall.EPOLL_CTL_ADD
		st.armed = true // before the registration: the next serve may run at once
	}
	// What this goroutine wrote (pending bytes, fragment) is read by the next
	// serve goroutine, which the poller starts under p.mu: passing through p.mu
	// here orders the two (the race detector does not see through epoll).
	st.p.mu.Lock()
	st.p.mu.Unlock() //nolint:staticcheck // empty critical section: a release fence
	var cerr error
	if st.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
			Fd: int32(uint32(st.key)), Pad: int32(uint32(st.key >> 32))}
		cerr = syscall.EpollCtl(st.p.epfd, op, int(fd), &ev)
	}) != nil {
		return true, nil
	}
	if cerr != nil {
		if op == syscall.EPOLL_CTL_ADD {
			st.armed = false // not registered: no serve can run
		}
		return false, cerr
	}
	return false, nil
}

// closeConn forgets the registration and closes the socket.
func (wc *wsConn) closeConn() {
	wc.conn.Close()
	if st := wc.ep; st != nil {
		st.p.forget(st.key)
	}
}

// serve runs on its own goroutine when the socket is readable (or has early
// bytes): it reads until the socket is drained, handles the complete frames
// and re-arms the registration, unless reading ended.
func (st *epollState) serve() {
	wc := st.wc
	bp := st.pending
	st.pending = nil
	if bp == nil {
		bp = epollReadPool.Get().(*[]byte)
	} else if cap(*bp) < epollReadSize {
		nb := epollReadPool.Get().(*[]byte)
		*nb = append((*nb)[:0], *bp...)
		bp = nb
	}
	var scratch []byte
	// Early bytes (or bytes kept from before) are parsed before the first read.
	parse := len(*bp) > 0
	for {
		if parse && !st.consume(wc, &bp, &scratch) {
			putReadBuf(bp)
			st.dropFrag()
			st.p.forget(st.key)
			return
		}
		b := *bp
		n, err := st.read(b[len(b):cap(b)])
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			putReadBuf(bp)
			st.dropFrag()
			st.p.forget(st.key)
			st.c.readError(wc, st.probing, err)
			return
		}
		short := len(b)+n < cap(b)
		*bp = b[:len(b)+n]
		parse = true
		if short {
			// The socket had less than the room left: most likely it is drained. Parse, and let
			// the level-triggered re-arm report what came meanwhile rather than pay for a read
			// that would say EAGAIN.
			if !st.consume(wc, &bp, &scratch) {
				putReadBuf(bp)
				st.dropFrag()
				st.p.forget(st.key)
				return
			}
			if len(*bp) < cap(*bp) {
				break
			}
			parse = false
		}
	}
	b := *bp
	if len(b) == 0 {
		putReadBuf(bp)
	} else if len(b) <= 256 {
		// A partial frame: keep only its bytes while the peer is slow.
		kept := append([]byte(nil), b...)
		putReadBuf(bp)
		st.pending = &kept
	} else {
		st.pending = bp
	}
	if closed, err := st.arm(); closed || err != nil {
		// Closed meanwhile (by the session): nothing to read any more. Or epoll refused it:
		// the session ends rather than waiting unread.
		if st.pending != nil {
			putReadBuf(st.pending)
			st.pending = nil
		}
		st.dropFrag()
		st.p.forget(st.key)
		if err != nil {
			st.c.srv.log.Warn("engineio: epoll refused a websocket", "sid", st.c.id, "err", err)
			st.c.readError(wc, st.probing, err)
		}
	}
}

// consume handles the complete frames in *bp and keeps the rest at its start;
// the buffer is replaced by a larger one when the partial frame that remains
// needs more room. false: reading ends (the session or probe was ended).
func (st *epollState) consume(wc *wsConn, bp **[]byte, scratch *[]byte) bool {
	b := **bp
	consumed, need, ok := st.parseFrames(wc, b, scratch)
	if !ok {
		**bp = b[:0]
		return false
	}
	b = b[:copy(b, b[consumed:])]
	**bp = b
	switch {
	case need > cap(b):
		nb := make([]byte, len(b), need)
		copy(nb, b)
		putReadBuf(*bp)
		*bp = &nb
	case len(b) == cap(b):
		// cannot happen (a header fits, and an incomplete frame of known size fits), but a full
		// buffer would read nothing more
		nb := make([]byte, len(b), 2*cap(b))
		copy(nb, b)
		putReadBuf(*bp)
		*bp = &nb
	}
	return true
}

func putReadBuf(bp *[]byte) {
	if cap(*bp) == epollReadSize {
		*bp = (*bp)[:0]
		epollReadPool.Put(bp)
	}
}

func (st *epollState) dropFrag() {
	if st.frag != nil {
		putBuf(st.frag.buf)
		st.frag = nil
	}
}

// read reads once from the non-blocking socket into p: syscall.EAGAIN when
// there is nothing, io.EOF when the peer closed.
func (st *epollState) read(p []byte) (int, error) {
	var n int
	var rerr error
	err := st.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// parseFrames handles the complete frames at the start of b and returns the
// bytes they took. need is the size of the incomplete frame that follows, when
// its header is complete. ok is false when reading must stop (the error was
// handled: session or probe ended).
func (st *epollState) parseFrames(wc *wsConn, b []byte, scratch *[]byte) (consumed, need int, ok bool) {
	c := st.c
	max := c.srv.opts.MaxPayload
	for {
		h, hn, err := parseFrameHeader(b[consumed:])
		if err == nil && hn > 0 {
			err = st.checkHeader(wc, h, max)
		}
		if err != nil {
			c.readError(wc, st.probing, err)
			return consumed, 0, false
		}
		if hn == 0 {
			return consumed, 0, true
		}
		end := consumed + hn + int(h.Length)
		if end > len(b) {
			return consumed, hn + int(h.Length), true
		}
		payload := b[consumed+hn : end]
		consumed = end
		ws.Cipher(payload, h.Mask, 0)
		if h.OpCode.IsControl() {
			if err := wc.answerControl(h.OpCode, payload); err != nil {
				c.readError(wc, st.probing, err)
				return consumed, 0, false
			}
			continue
		}
		op, msg, buf, done, err := st.assemble(wc, h, payload)
		if err == nil && done && op == ws.OpText && !utf8.Valid(msg) {
			err = errWSUTF8
		}
		if err != nil {
			putBuf(buf)
			c.readError(wc, st.probing, err)
			return consumed, 0, false
		}
		if !done {
			continue
		}
		ok := c.onWSMessage(wc, op, msg, &st.probing, scratch)
		putBuf(buf)
		if !ok {
			return consumed, 0, false
		}
	}
}

// checkHeader applies readMessage's checks to a frame header, before its
// payload has arrived.
func (st *epollState) checkHeader(wc *wsConn, h ws.Header, max int) error {
	if !h.Masked {
		return errWSProtocol
	}
	if h.OpCode.IsControl() {
		if h.Length > 125 || !h.Fin || h.Rsv != 0 {
			return errWSProtocol
		}
		return nil
	}
	started := st.frag != nil
	switch {
	case h.OpCode == ws.OpContinuation && !started,
		h.OpCode != ws.OpContinuation && started,
		h.OpCode.IsReserved():
		return errWSProtocol
	}
	have := 0
	if !started {
		if h.Rsv1() && (st.c.srv.deflate == nil || !wc.deflate) {
			return errWSProtocol
		}
		if h.Rsv&^0x4 != 0 {
			return errWSProtocol
		}
	} else {
		if h.Rsv != 0 {
			return errWSProtocol
		}
		have = len(*st.frag.buf)
	}
	if h.Length > int64(max-have) {
		return ErrPayloadTooBig
	}
	return nil
}

// assemble takes one (checked, unmasked) data frame. done reports a complete
// message msg; buf, when not nil, is the pooled buffer holding it.
func (st *epollState) assemble(wc *wsConn, h ws.Header, payload []byte) (op ws.OpCode, msg []byte, buf *[]byte, done bool, err error) {
	d := st.c.srv.deflate
	if st.frag == nil {
		op = h.OpCode
		compressed := h.Rsv1()
		if !h.Fin {
			fb := getBuf()
			*fb = append((*fb)[:0], payload...)
			st.frag = &wsFrag{op: op, compressed: compressed, buf: fb}
			return 0, nil, nil, false, nil
		}
		if !compressed {
			return op, payload, nil, true, nil // straight from the read buffer
		}
		out := getBuf()
		plain, err := d.decompress((*out)[:0], payload)
		*out = plain
		return op, plain, out, true, err
	}
	f := st.frag
	*f.buf = append(*f.buf, payload...)
	if !h.Fin {
		return 0, nil, nil, false, nil
	}
	st.frag = nil
	op, buf, msg = f.op, f.buf, *f.buf
	if f.compressed {
		out := getBuf()
		plain, err := d.decompress((*out)[:0], msg)
		*out = plain
		putBuf(buf)
		return op, plain, out, true, err
	}
	return op, msg, buf, true, nil
}

// parseFrameHeader parses the frame header at the start of b; n is 0 when b
// does not hold all of it yet.
func parseFrameHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		if b[2]&0x80 != 0 {
			return h, 0, ws.ErrHeaderLengthMSB
		}
		h.Length = int64(binary.BigEndian.Uint64(b[2:10]))
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}
