package clienttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// wsTransport is Engine.IO over one WebSocket: a text frame per text
// packet, a binary frame per binary message.
type wsTransport struct {
	conn    net.Conn
	src     io.Reader // handshake leftovers, then conn
	maxSize int64

	wmu    sync.Mutex
	closed bool
}

func dialWebSocket(ctx context.Context, u string, opts Options) (*wsTransport, error) {
	d := ws.Dialer{}
	if len(opts.Header) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(opts.Header)
	}
	conn, br, _, err := d.Dial(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("clienttest: websocket dial %s: %w", u, err)
	}
	t := &wsTransport{conn: conn, src: conn, maxSize: opts.MaxMessageSize}
	if br != nil {
		t.src = io.MultiReader(br, conn)
	}
	return t, nil
}

func (t *wsTransport) name() string { return "websocket" }

func (t *wsTransport) interrupt() { t.conn.SetReadDeadline(time.Unix(1, 0)) }

func (t *wsTransport) read(deadline time.Time) (enginePacket, error) {
	t.conn.SetReadDeadline(deadline)
	op, msg, err := t.readMessage()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return enginePacket{}, &timeoutError{err}
		}
		return enginePacket{}, err
	}
	return enginePacket{binary: op == ws.OpBinary, data: msg}, nil
}

func (t *wsTransport) write(pkts ...enginePacket) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	for _, p := range pkts {
		op := ws.OpText
		if p.binary {
			op = ws.OpBinary
		}
		if err := t.writeFrameLocked(op, p.data); err != nil {
			return err
		}
	}
	return nil
}

func (t *wsTransport) close(graceful bool) {
	if graceful {
		t.wmu.Lock()
		_ = t.writeFrameLocked(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		t.wmu.Unlock()
	}
	t.wmu.Lock()
	t.closed = true
	t.wmu.Unlock()
	t.conn.Close()
}

func (t *wsTransport) writeFrame(op ws.OpCode, data []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.writeFrameLocked(op, data)
}

// writeFrameLocked writes one masked frame with a single Write.
func (t *wsTransport) writeFrameLocked(op ws.OpCode, data []byte) error {
	if t.closed {
		return net.ErrClosed
	}
	mask := ws.NewMask()
	hdr := ws.Header{Fin: true, OpCode: op, Length: int64(len(data)), Masked: true, Mask: mask}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	w := sliceWriter{b: (*buf)[:0]}
	if err := ws.WriteHeader(&w, hdr); err != nil {
		return err
	}
	start := len(w.b)
	w.b = append(w.b, data...)
	ws.Cipher(w.b[start:], mask, 0)
	*buf = w.b
	if _, err := t.conn.Write(w.b); err != nil {
		return fmt.Errorf("clienttest: write: %w", err)
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// readMessage reads one whole data message, answering control frames
// (ping → pong, close → close) on the way.
func (t *wsTransport) readMessage() (ws.OpCode, []byte, error) {
	var (
		op  ws.OpCode
		msg []byte
	)
	for {
		h, err := ws.ReadHeader(t.src)
		if err != nil {
			return 0, nil, err
		}
		if h.Length > t.maxSize || int64(len(msg))+h.Length > t.maxSize {
			return 0, nil, fmt.Errorf("message larger than %d bytes", t.maxSize)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(t.src, payload); err != nil {
			return 0, nil, err
		}
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			if err := t.writeFrame(ws.OpPong, payload); err != nil {
				return 0, nil, err
			}
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(payload)
			_ = t.writeFrame(ws.OpClose, ws.NewCloseFrameBody(code, ""))
			return 0, nil, &closedError{code: code, reason: reason}
		case ws.OpContinuation:
			if op == 0 {
				return 0, nil, errors.New("continuation frame without a message")
			}
			msg = append(msg, payload...)
		default:
			if op != 0 {
				return 0, nil, errors.New("new message inside a fragmented one")
			}
			op, msg = h.OpCode, payload
		}
		if h.Fin {
			return op, msg, nil
		}
	}
}

// closedError is the peer closing the transport (WebSocket close frame).
type closedError struct {
	code   ws.StatusCode
	reason string
}

func (e *closedError) Error() string {
	return "websocket closed: " + strconv.Itoa(int(e.code)) + " " + e.reason
}
