package redisadapter

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/maoga/maoga/adapter"
)

// fakeNsp is an adapter.Namespace without a server, for unit tests of the adapter logic.
type fakeNsp struct {
	name    string
	mu      sync.Mutex
	sockets map[string]*fakeSocket
	ackID   int64
	sse     [][]json.RawMessage
}

func (n *fakeNsp) Name() string { return n.name }
func (n *fakeNsp) Socket(id adapter.SocketID) adapter.Socket {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.sockets[id]; ok {
		return s
	}
	return nil
}
func (n *fakeNsp) NextAckID() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ackID++
	return n.ackID
}
func (n *fakeNsp) OnServerSideEmit(args []json.RawMessage, ack adapter.AckFunc) {
	n.mu.Lock()
	n.sse = append(n.sse, args)
	n.mu.Unlock()
	if ack != nil {
		ack([]json.RawMessage{json.RawMessage(`"ack"`)})
	}
}
func (n *fakeNsp) MaxDisconnectionDuration() time.Duration { return 0 }

type fakeSocket struct {
	id      string
	mu      sync.Mutex
	written []*adapter.Encoded
}

func (s *fakeSocket) ID() adapter.SocketID { return s.id }
func (s *fakeSocket) WriteEncoded(p *adapter.Encoded, volatile bool) {
	s.mu.Lock()
	s.written = append(s.written, p)
	s.mu.Unlock()
}
func (s *fakeSocket) RegisterAck(int64, time.Duration, adapter.AckFunc) {}
func (s *fakeSocket) Join(...adapter.Room)                              {}
func (s *fakeSocket) Leave(...adapter.Room)                             {}
func (s *fakeSocket) Disconnect(bool)                                   {}
func (s *fakeSocket) Details() adapter.SocketDetails {
	return adapter.SocketDetails{ID: s.id}
}
