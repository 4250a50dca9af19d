package engineio

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// bufPool holds byte buffers for poll responses, POST bodies and websocket
// messages. Buffers that grew past maxPooledBuf are left to the GC so that one
// large message does not pin memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBuf = 64 << 10

// upgradeCheckInterval is how soon a GET arriving during an upgrade is ended with noop.
const upgradeCheckInterval = 100 * time.Millisecond

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// servePoll answers a long-polling GET: at once when packets are queued,
// otherwise when the next packet (or a ping, noop or close) is ready.
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.pongOverdueLocked() {
		c.mu.Unlock()
		c.finish(ReasonPingTimeout, nil)
		c.srv.refuse(w, r, newRequestError(CodeUnknownSID))
		return
	}
	if c.poll != nil {
		c.mu.Unlock()
		// Node: "overlap from client" → the session ends, the first GET gets the close packet.
		c.finish(ReasonTransportError, ErrPollOverlap)
		c.srv.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}
	var pkts []packet
	var after func()
	switch {
	case c.state == stateClosed:
		c.mu.Unlock()
		c.srv.refuse(w, r, newRequestError(CodeUnknownSID))
		return
	case c.state == stateClosing:
		pkts = append(c.takeQueueLocked(), packet{typ: typeClose})
		reason := c.closeReason
		after = func() { c.finish(reason, nil) }
	case len(c.queue) > 0:
		pkts = c.takeQueueLocked()
	default:
		pw := &pollWait{ch: make(chan struct{})}
		c.poll = pw
		if c.probed {
			// An upgrade is under way (probe answered). Like Node's 100ms upgrade
			// check, end this poll cycle with a noop soon, unless the upgrade
			// completes first: then the GET is refused as any polling request
			// after the upgrade.
			c.endPollSoon(pw)
		}
		c.mu.Unlock()
		select {
		case <-pw.ch:
		case <-r.Context().Done():
			c.mu.Lock()
			if c.poll == pw {
				c.poll = nil
				c.mu.Unlock()
				c.finish(ReasonTransportError, ErrPollAborted)
				return
			}
			c.mu.Unlock()
			<-pw.ch // answered concurrently: pkts is set
		}
		c.mu.Lock()
		pkts, after = pw.pkts, pw.after
		if pw.refuse {
			c.mu.Unlock()
			c.srv.refuse(w, r, newRequestError(CodeBadRequest))
			return
		}
	}
	c.mu.Unlock()

	err := c.writePollResponse(w, pkts)
	signalSent(pkts)
	if after != nil {
		after()
	} else if err != nil {
		c.finish(ReasonTransportError, err)
	}
}

// writePollResponse writes pkts as one payload, bounded by WriteTimeout.
func (c *Conn) writePollResponse(w http.ResponseWriter, pkts []packet) error {
	buf := getBuf()
	defer putBuf(buf)
	*buf = appendPayload((*buf)[:0], pkts)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(*buf)))
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout)) // not all ResponseWriters support deadlines
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(*buf); err != nil {
		return err
	}
	return rc.Flush()
}

// endPollSoon answers pw with noop after upgradeCheckInterval if it is still
// pending then (Node's upgrade "check" interval).
func (c *Conn) endPollSoon(pw *pollWait) {
	time.AfterFunc(upgradeCheckInterval, func() {
		c.mu.Lock()
		if c.poll == pw {
			c.answerPollLocked([]packet{{typ: typeNoop}}, nil)
		}
		c.mu.Unlock()
	})
}

var errStopPayload = errors.New("engineio: session closed while reading payload")

// servePost reads a payload of packets sent by the client.
func (c *Conn) servePost(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		c.finish(ReasonTransportError, ErrBinaryPost)
		c.srv.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}
	c.mu.Lock()
	if c.pongOverdueLocked() {
		c.mu.Unlock()
		c.finish(ReasonPingTimeout, nil)
		c.srv.refuse(w, r, newRequestError(CodeUnknownSID))
		return
	}
	if c.posting {
		c.mu.Unlock()
		c.finish(ReasonTransportError, ErrPostOverlap)
		c.srv.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}
	c.posting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.posting = false
		c.mu.Unlock()
	}()

	max := c.srv.opts.MaxPayload
	if r.ContentLength > int64(max) {
		// As Node: 413 and the payload is dropped; the session itself is left to
		// the client (which closes on a failed POST) and the heartbeat.
		c.refuseTooLarge(w, r, r.ContentLength)
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	body, err := readAtMost((*buf)[:0], r.Body, max+1)
	*buf = body
	if err != nil {
		c.finish(ReasonTransportError, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if len(body) > max {
		c.refuseTooLarge(w, r, -1)
		return
	}
	if !utf8.Valid(body) {
		// As Node, which reads a text POST body as a UTF-8 string: every invalid
		// byte becomes U+FFFD, so handlers (and the clients they forward to, over
		// websocket text frames) only ever see valid UTF-8.
		fixed := getBuf()
		defer putBuf(fixed)
		*fixed = replaceInvalidUTF8((*fixed)[:0], body)
		body = *fixed
	}

	scratch := getBuf()
	defer putBuf(scratch)
	err = decodePayload(body, scratch, func(p packet) error {
		if !c.onPacket(p) {
			return errStopPayload
		}
		return nil
	})
	if errors.Is(err, errParse) {
		c.finish(ReasonParseError, err)
		c.srv.refuse(w, r, newRequestError(CodeBadRequest))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok")) // the client going away here is noticed by its next request
}

// readAtMost appends up to limit bytes of r to dst.
func readAtMost(dst []byte, r io.Reader, limit int) ([]byte, error) {
	for len(dst) < limit {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		end := cap(dst)
		if end > limit {
			end = limit
		}
		n, err := r.Read(dst[len(dst):end])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// refuseTooLarge answers a POST body over maxPayload with 413 and the JSON
// error body of the other refusals, and logs the first one of the session
// (size -1: a body without Content-Length that went past the limit).
func (c *Conn) refuseTooLarge(w http.ResponseWriter, r *http.Request, size int64) {
	max := c.srv.opts.MaxPayload
	if c.tooBigLogged.CompareAndSwap(false, true) {
		c.srv.log.Warn("engineio: message over maxPayload refused", "sid", c.id, "remote", r.RemoteAddr,
			"transport", TransportPolling, "maxPayload", max, "contentLength", size)
	}
	c.srv.refuse(w, r, &RequestError{Code: CodeBadRequest, Message: MessagePayloadTooLarge, Status: http.StatusRequestEntityTooLarge})
}

// replaceInvalidUTF8 appends b to dst with every byte that does not start a
// valid UTF-8 sequence replaced by U+FFFD.
func replaceInvalidUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst
}
