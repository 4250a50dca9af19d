// Package faultproxy is a TCP proxy for fault tests: the server under test talks to its database
// through it, and the test cuts the link (every proxied connection closed, new ones refused) and
// restores it. A trigger can cut the link at an exact point of a conversation: just before the client
// sends a MongoDB command that matches (say, the `insert` into `lobbies` that follows a seat claim), so
// that a multi-document write is interrupted between its writes deterministically.
//
// Only for tests; the MongoDB wire parsing understands what the Go driver sends without compression
// (OP_MSG with a body section).
package faultproxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Proxy forwards connections from its own loopback address to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]struct{} // both ends of every live proxied connection
	trigger *trigger
	cuts    int
	closed  bool
	wg      sync.WaitGroup
}

// Command is one MongoDB command a client sent: its name ("insert", "update", "find", ...) and the
// collection it names (the value of the first field), "" when that value is not a string.
type Command struct {
	Name       string
	Collection string
}

type trigger struct {
	match func(Command) bool
	fired chan Command
}

// Start listens on 127.0.0.1 (a free port) and forwards to target ("host:port").
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every proxied connection and refuses new ones (accepted, then closed at once) until
// Restore: to the client the database is unreachable.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

func (p *Proxy) cutLocked() {
	if !p.cut {
		p.cuts++
	}
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// IsCut reports whether the link is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// CutBefore arms a one-shot trigger: the first command a client sends for which match is true is not
// forwarded; the link is cut instead (as Cut). The returned channel receives that command. Arming
// again replaces an unfired trigger.
func (p *Proxy) CutBefore(match func(Command) bool) <-chan Command {
	t := &trigger{match: match, fired: make(chan Command, 1)}
	p.mu.Lock()
	p.trigger = t
	p.mu.Unlock()
	return t.fired
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.cutLocked()
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.cut
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for one client connection and pipes both ways.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed { // cut while dialling
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(client, server)
		_ = client.Close()
	}()
	p.clientToServer(client, server)
	_ = server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// clientToServer forwards whole wire messages so that the trigger can stop one before it is sent.
func (p *Proxy) clientToServer(client, server net.Conn) {
	for {
		msg, err := readMessage(client)
		if err != nil {
			return
		}
		p.mu.Lock()
		t := p.trigger
		p.mu.Unlock()
		if t != nil {
			if cmd, ok := parseCommand(msg); ok && t.match(cmd) {
				p.mu.Lock()
				fire := p.trigger == t
				if fire {
					p.trigger = nil
					// Reported before the cut (fired holds one, the trigger fires once): a caller
					// that sees its command fail then also finds the report.
					t.fired <- cmd
					p.cutLocked()
				}
				p.mu.Unlock()
				if fire {
					return
				}
			}
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

const maxMessage = 48 << 20 // MongoDB's own limit on a message

// readMessage reads one length-prefixed wire message.
func readMessage(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(head[:]))
	if n < 16 || n > maxMessage {
		return nil, errors.New("faultproxy: bad message length")
	}
	msg := make([]byte, n)
	copy(msg, head[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

const opMsg = 2013

// parseCommand finds the command of an OP_MSG: the first field of its body section (kind 0).
func parseCommand(msg []byte) (Command, bool) {
	if len(msg) < 21 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return Command{}, false
	}
	sections := msg[20:] // after the header (16) and flagBits (4)
	for len(sections) > 0 {
		kind := sections[0]
		sections = sections[1:]
		if len(sections) < 4 {
			return Command{}, false
		}
		size := int(binary.LittleEndian.Uint32(sections[:4]))
		if size < 5 || size > len(sections) {
			return Command{}, false
		}
		if kind == 0 {
			doc := bson.Raw(sections[:size])
			elems, err := doc.Elements()
			if err != nil || len(elems) == 0 {
				return Command{}, false
			}
			cmd := Command{Name: elems[0].Key()}
			cmd.Collection, _ = elems[0].Value().StringValueOK()
			return cmd, true
		}
		sections = sections[size:] // kind 1: size covers the identifier and the documents
	}
	return Command{}, false
}
