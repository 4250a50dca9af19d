package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// client is one lean Engine.IO v4 / Socket.IO v5 client over WebSocket: a connection, a small read
// buffer and one reader goroutine. It answers pings and hands every Socket.IO packet it receives
// (the text after the engine.io "4") to onPacket; it knows nothing else of the protocol, so that
// 10k of them stay cheap in the generator.
type client struct {
	conn net.Conn
	r    *bufio.Reader
	raw  bool

	wmu sync.Mutex

	onPacket func(pkt []byte)
	done     chan struct{}
	closing  atomic.Bool
}

// errConnect is a refused namespace connection (CONNECT_ERROR).
var errConnect = errors.New("connect_error")

// dial opens a client on base ("ws://host:port"). Socket.IO: the open packet is read, "40" sent and
// the CONNECT answer awaited before dial returns; when the query names a room, a "sync" event is then
// acknowledged by the server, which proves the connection handler (that joins the room) has run: a
// CONNECT answer alone does not, the Go server runs connection handlers after answering, and a
// broadcast could otherwise overtake the join. Raw (the baseline server): just the websocket.
func dial(ctx context.Context, base string, query url.Values, raw bool, onPacket func([]byte), live *atomic.Int64) (*client, error) {
	u := base + "/socket.io/?EIO=4&transport=websocket"
	if raw {
		u = base + "/raw?x=1"
	}
	if len(query) > 0 {
		u += "&" + query.Encode()
	}
	conn, br, _, err := ws.Dialer{}.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, raw: raw, onPacket: onPacket, done: make(chan struct{})}
	if br != nil {
		c.r = br
	} else {
		c.r = bufio.NewReaderSize(conn, 1024)
	}
	if !raw {
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if err := c.handshake(query.Get("room") != ""); err != nil {
			conn.Close()
			return nil, err
		}
		_ = conn.SetDeadline(time.Time{})
	}
	if live != nil {
		live.Add(1)
	}
	go c.readLoop(live)
	return c, nil
}

// handshake reads the open packet, joins the main namespace and waits for its CONNECT answer (and,
// with sync, for the ack of a "sync" event).
func (c *client) handshake(sync bool) error {
	var buf []byte
	msg, err := c.readMessage(buf)
	if err != nil {
		return err
	}
	if len(msg) == 0 || msg[0] != '0' {
		return fmt.Errorf("expected open packet, got %q", msg)
	}
	if err := c.send([]byte("40")); err != nil {
		return err
	}
	for {
		msg, err = c.readMessage(msg[:0])
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(msg, []byte("40")):
			if !sync {
				return nil
			}
			sync = false
			if err := c.send([]byte(`420["sync"]`)); err != nil {
				return err
			}
		case bytes.HasPrefix(msg, []byte("430")):
			return nil
		case bytes.HasPrefix(msg, []byte("44")):
			return fmt.Errorf("%w: %s", errConnect, msg)
		case len(msg) > 0 && msg[0] == '2':
			if err := c.send([]byte("3")); err != nil {
				return err
			}
		}
	}
}

// readMessage reads one complete websocket message (continuation frames joined; control frames
// handled in passing) into buf.
func (c *client) readMessage(buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return nil, err
		}
		n := int(h.Length)
		start := len(buf)
		if cap(buf)-start < n {
			nb := make([]byte, start, start+n+512)
			copy(nb, buf)
			buf = nb
		}
		buf = buf[:start+n]
		if _, err := io.ReadFull(c.r, buf[start:]); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(buf[start:], h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpClose:
			return nil, io.EOF
		case ws.OpPing:
			c.wmu.Lock()
			_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, buf[start:])
			c.wmu.Unlock()
			buf = buf[:start]
			continue
		case ws.OpPong:
			buf = buf[:start]
			continue
		}
		if h.Fin {
			return buf, nil
		}
	}
}

func (c *client) readLoop(live *atomic.Int64) {
	defer func() {
		if live != nil {
			live.Add(-1)
		}
		close(c.done)
	}()
	buf := make([]byte, 0, 256)
	for {
		msg, err := c.readMessage(buf)
		if err != nil {
			return
		}
		buf = msg
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case '2': // engine.io ping
			if !c.raw {
				_ = c.send([]byte("3"))
			}
		case '4':
			if c.onPacket != nil {
				c.onPacket(msg[1:])
			}
		case '1':
			return
		}
	}
}

// send writes one text frame.
func (c *client) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return wsutil.WriteClientMessage(c.conn, ws.OpText, b)
}

// close ends the connection with a websocket close frame and waits for the reader to stop.
func (c *client) close() {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.wmu.Lock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = wsutil.WriteClientMessage(c.conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	c.wmu.Unlock()
	c.conn.Close()
	<-c.done
}

// stampOf extracts the send timestamp ("t":<ns>) from a packet; -1 when absent. A byte scan rather
// than a JSON decode so that the generator spends its CPU on the sockets, not on parsing.
func stampOf(pkt []byte) int64 {
	i := bytes.Index(pkt, []byte(`"t":`))
	if i < 0 {
		return -1
	}
	j := i + 4
	k := j
	for k < len(pkt) && pkt[k] >= '0' && pkt[k] <= '9' {
		k++
	}
	v, err := strconv.ParseInt(string(pkt[j:k]), 10, 64)
	if err != nil {
		return -1
	}
	return v
}
