package adapter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/maoga/maoga/server/parser"
)

// MemoryOptions tune the recovery store of a Memory adapter. Zero values take the defaults.
type MemoryOptions struct {
	// MaxSessions bounds the number of disconnected sessions kept for recovery (default 100_000);
	// past it the oldest is dropped.
	MaxSessions int
	// MaxPackets bounds the number of broadcast packets kept for recovery (default 10_000); past it
	// the oldest is dropped (a session whose offset is older then gets a fresh start).
	MaxPackets int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Memory is the in-memory adapter of one namespace on one node. Cluster adapters embed it for the
// local part: every method of Memory acts on local sockets only.
type Memory struct {
	nsp Namespace

	mu    sync.RWMutex
	rooms map[Room]members
	sids  map[SocketID][]Room

	// Connection state recovery; active when nsp.MaxDisconnectionDuration() > 0.
	window      time.Duration
	now         func() time.Time
	maxSessions int
	maxPackets  int
	recMu       sync.Mutex
	sessions    map[PrivateSessionID]*storedSession
	sessionFIFO []sessionRef   // in disconnect order, for expiry and the bound
	packets     []storedPacket // in offset order
	firstSeq    uint64         // offset sequence number of packets[0]
	nextSeq     uint64         // offset sequence number of the next stored packet
	offsetPfx   string         // random per adapter, so offsets of another process never match
}

type storedSession struct {
	s              Session
	disconnectedAt time.Time
}

type sessionRef struct {
	pid PrivateSessionID
	at  time.Time
}

type storedPacket struct {
	p      *parser.Packet
	rooms  []Room
	except []Room
	at     time.Time
}

var _ Adapter = (*Memory)(nil)

// NewMemory returns the in-memory adapter for nsp with default options.
// As a Factory: func(n adapter.Namespace) adapter.Adapter { return adapter.NewMemory(n) }.
func NewMemory(nsp Namespace) *Memory { return NewMemoryWithOptions(nsp, MemoryOptions{}) }

// NewMemoryWithOptions returns the in-memory adapter for nsp.
func NewMemoryWithOptions(nsp Namespace, o MemoryOptions) *Memory {
	if o.MaxSessions <= 0 {
		o.MaxSessions = 100_000
	}
	if o.MaxPackets <= 0 {
		o.MaxPackets = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Memory{
		nsp:         nsp,
		rooms:       make(map[Room]members),
		sids:        make(map[SocketID][]Room),
		window:      nsp.MaxDisconnectionDuration(),
		now:         o.Now,
		maxSessions: o.MaxSessions,
		maxPackets:  o.MaxPackets,
		sessions:    make(map[PrivateSessionID]*storedSession),
		offsetPfx:   hex.EncodeToString(b[:]) + "-",
	}
}

// MemoryFactory is the Factory of the in-memory adapter.
func MemoryFactory(nsp Namespace) Adapter { return NewMemory(nsp) }

// Namespace returns the namespace the adapter serves.
func (m *Memory) Namespace() Namespace { return m.nsp }

func (m *Memory) Init() error  { return nil }
func (m *Memory) Close() error { return nil }

// ServerCount is 1: a Memory adapter knows only its own node.
func (m *Memory) ServerCount(context.Context) (int, error) { return 1, nil }

func (m *Memory) AddAll(id SocketID, rooms ...Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mine := m.sids[id]
	for _, r := range rooms {
		mb := m.rooms[r]
		if mb.has(id) {
			continue
		}
		mb.add(id)
		m.rooms[r] = mb
		mine = append(mine, r)
	}
	m.sids[id] = mine
}

func (m *Memory) Del(id SocketID, room Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mine := m.sids[id]
	for i, r := range mine {
		if r == room {
			mine = append(mine[:i], mine[i+1:]...)
			break
		}
	}
	if len(mine) == 0 {
		delete(m.sids, id)
	} else {
		m.sids[id] = mine
	}
	m.delMember(room, id)
}

func (m *Memory) delMember(room Room, id SocketID) {
	mb, ok := m.rooms[room]
	if !ok {
		return
	}
	mb.del(id)
	if mb.len() == 0 {
		delete(m.rooms, room)
	} else {
		m.rooms[room] = mb
	}
}

// members is the set of sockets in a room. Most rooms, every socket's own room first, have one
// member: it is kept inline (no map of its own, ~400 bytes less per socket); a second member moves
// the set to a map.
type members struct {
	one  SocketID // the only member when many is nil ("" = none)
	many map[SocketID]struct{}
}

func (mb *members) has(id SocketID) bool {
	if mb.many != nil {
		_, in := mb.many[id]
		return in
	}
	return mb.one != "" && mb.one == id
}

// add adds id (not a member yet).
func (mb *members) add(id SocketID) {
	switch {
	case mb.many != nil:
		mb.many[id] = struct{}{}
	case mb.one == "":
		mb.one = id
	default:
		mb.many = map[SocketID]struct{}{mb.one: {}, id: {}}
		mb.one = ""
	}
}

func (mb *members) del(id SocketID) {
	if mb.many != nil {
		delete(mb.many, id)
		return
	}
	if mb.one == id {
		mb.one = ""
	}
}

func (mb *members) len() int {
	if mb.many != nil {
		return len(mb.many)
	}
	if mb.one != "" {
		return 1
	}
	return 0
}

// each calls fn for every member.
func (mb *members) each(fn func(SocketID)) {
	if mb.many == nil {
		if mb.one != "" {
			fn(mb.one)
		}
		return
	}
	for id := range mb.many {
		fn(id)
	}
}

func (m *Memory) DelAll(id SocketID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.sids[id] {
		m.delMember(r, id)
	}
	delete(m.sids, id)
}

func (m *Memory) Rooms() []Room {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Room, 0, len(m.rooms))
	for r := range m.rooms {
		out = append(out, r)
	}
	return out
}

func (m *Memory) Sockets(rooms ...Room) []SocketID {
	var out []SocketID
	m.apply(BroadcastOptions{Rooms: rooms}, func(s Socket) { out = append(out, s.ID()) })
	return out
}

func (m *Memory) SocketRooms(id SocketID) []Room {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mine := m.sids[id]
	if mine == nil {
		return nil
	}
	return append([]Room(nil), mine...)
}

var socketSlices = sync.Pool{New: func() any { s := make([]Socket, 0, 64); return &s }}

// apply calls fn for every local socket matching opts. fn runs without the adapter lock held, so it
// may join, leave or disconnect.
func (m *Memory) apply(opts BroadcastOptions, fn func(Socket)) {
	bufp := socketSlices.Get().(*[]Socket)
	matched := m.match(opts, (*bufp)[:0])
	for i, s := range matched {
		fn(s)
		matched[i] = nil
	}
	if cap(matched) <= 4096 {
		*bufp = matched[:0]
		socketSlices.Put(bufp)
	}
}

func (m *Memory) match(opts BroadcastOptions, out []Socket) []Socket {
	m.mu.RLock()
	defer m.mu.RUnlock()
	excluded := func(id SocketID) bool {
		for _, r := range opts.Except {
			if mb, ok := m.rooms[r]; ok && mb.has(id) {
				return true
			}
		}
		return false
	}
	add := func(id SocketID) {
		if len(opts.Except) > 0 && excluded(id) {
			return
		}
		if s := m.nsp.Socket(id); s != nil {
			out = append(out, s)
		}
	}
	switch len(opts.Rooms) {
	case 0:
		for id := range m.sids {
			add(id)
		}
	case 1:
		mb := m.rooms[opts.Rooms[0]]
		mb.each(add)
	default:
		seen := make(map[SocketID]struct{})
		for _, r := range opts.Rooms {
			mb := m.rooms[r]
			mb.each(func(id SocketID) {
				if _, dup := seen[id]; dup {
					return
				}
				seen[id] = struct{}{}
				add(id)
			})
		}
	}
	return out
}

// Encode encodes p once for all receivers.
func Encode(p *parser.Packet) *Encoded {
	text, atts := parser.Encode(p)
	return &Encoded{Text: text, Attachments: atts}
}

func (m *Memory) Broadcast(p *parser.Packet, opts BroadcastOptions) error {
	q := *p
	q.Nsp = m.nsp.Name()
	if m.window > 0 && (q.Type == parser.Event || q.Type == parser.BinaryEvent) && q.ID == parser.NoID && !opts.Flags.Volatile {
		q.Data = m.store(&q, opts)
	}
	enc := Encode(&q)
	m.apply(opts, func(s Socket) { s.WriteEncoded(enc, opts.Flags.Volatile) })
	return nil
}

func (m *Memory) BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, clientCount func(n int), ack AckFunc) error {
	q := *p
	q.Nsp = m.nsp.Name()
	q.ID = m.nsp.NextAckID()
	enc := Encode(&q)
	n := 0
	m.apply(opts, func(s Socket) {
		n++
		s.RegisterAck(q.ID, opts.Flags.Timeout, ack)
		s.WriteEncoded(enc, opts.Flags.Volatile)
	})
	clientCount(n)
	return nil
}

func (m *Memory) FetchSockets(_ context.Context, opts BroadcastOptions) ([]SocketDetails, error) {
	var out []SocketDetails
	m.apply(opts, func(s Socket) { out = append(out, s.Details()) })
	return out, nil
}

func (m *Memory) AddSockets(opts BroadcastOptions, rooms []Room) error {
	m.apply(opts, func(s Socket) { s.Join(rooms...) })
	return nil
}

func (m *Memory) DelSockets(opts BroadcastOptions, rooms []Room) error {
	m.apply(opts, func(s Socket) { s.Leave(rooms...) })
	return nil
}

func (m *Memory) DisconnectSockets(opts BroadcastOptions, close bool) error {
	m.apply(opts, func(s Socket) { s.Disconnect(close) })
	return nil
}

// ServerSideEmit has no other node to reach: it does nothing.
func (m *Memory) ServerSideEmit([]json.RawMessage) error { return nil }

// ServerSideEmitWithAck has no other node to wait for: no replies, no error.
func (m *Memory) ServerSideEmitWithAck(context.Context, []json.RawMessage) ([][]json.RawMessage, error) {
	return [][]json.RawMessage{}, nil
}

// store keeps an event packet for recovery and returns its data with the offset appended as last argument.
// Must hold no lock; takes recMu.
func (m *Memory) store(q *parser.Packet, opts BroadcastOptions) json.RawMessage {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	now := m.now()
	m.expirePackets(now)
	seq := m.nextSeq
	m.nextSeq++
	if len(m.packets) == 0 {
		m.firstSeq = seq
	}
	offset := m.offsetPfx + strconv.FormatUint(seq, 36)
	data := appendArg(q.Data, offset)
	stored := *q
	stored.Data = data
	m.packets = append(m.packets, storedPacket{p: &stored, rooms: opts.Rooms, except: opts.Except, at: now})
	if len(m.packets) > m.maxPackets {
		m.dropPackets(len(m.packets) - m.maxPackets)
	}
	return data
}

func (m *Memory) dropPackets(n int) {
	clear(m.packets[:n])
	m.packets = m.packets[n:]
	m.firstSeq += uint64(n)
	if len(m.packets) == 0 {
		m.packets = nil
	}
}

func (m *Memory) expirePackets(now time.Time) {
	n := 0
	for n < len(m.packets) && now.Sub(m.packets[n].at) > m.window {
		n++
	}
	if n > 0 {
		m.dropPackets(n)
	}
}

// appendArg appends a JSON string to a JSON array.
func appendArg(arr json.RawMessage, s string) json.RawMessage {
	arr = bytes.TrimRight(arr, " \t\r\n")
	quoted, _ := json.Marshal(s)
	out := make([]byte, 0, len(arr)+len(quoted)+1)
	if len(arr) < 2 || arr[len(arr)-1] != ']' {
		out = append(out, '[')
		out = append(out, quoted...)
		return append(out, ']')
	}
	out = append(out, arr[:len(arr)-1]...)
	if len(bytes.TrimSpace(arr[1:len(arr)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, quoted...)
	return append(out, ']')
}

func (m *Memory) PersistSession(s *Session) {
	if m.window <= 0 || s == nil {
		return
	}
	m.recMu.Lock()
	defer m.recMu.Unlock()
	now := m.now()
	m.expireSessions(now)
	cp := *s
	cp.MissedPackets = nil
	m.sessions[s.PID] = &storedSession{s: cp, disconnectedAt: now}
	m.sessionFIFO = append(m.sessionFIFO, sessionRef{pid: s.PID, at: now})
	for len(m.sessions) > m.maxSessions && len(m.sessionFIFO) > 0 {
		m.popSession()
	}
}

func (m *Memory) popSession() {
	ref := m.sessionFIFO[0]
	m.sessionFIFO[0] = sessionRef{}
	m.sessionFIFO = m.sessionFIFO[1:]
	if st := m.sessions[ref.pid]; st != nil && st.disconnectedAt.Equal(ref.at) {
		delete(m.sessions, ref.pid)
	}
	if len(m.sessionFIFO) == 0 {
		m.sessionFIFO = nil
	}
}

func (m *Memory) expireSessions(now time.Time) {
	for len(m.sessionFIFO) > 0 && now.Sub(m.sessionFIFO[0].at) > m.window {
		m.popSession()
	}
}

func (m *Memory) RestoreSession(pid PrivateSessionID, offset string) (*Session, error) {
	if m.window <= 0 {
		return nil, nil
	}
	m.recMu.Lock()
	defer m.recMu.Unlock()
	now := m.now()
	m.expireSessions(now)
	m.expirePackets(now)
	st := m.sessions[pid]
	if st == nil {
		return nil, nil
	}
	delete(m.sessions, pid) // consumed; its FIFO entry no longer matches and is skipped later
	if now.Sub(st.disconnectedAt) > m.window {
		return nil, nil
	}
	s := st.s
	missed, ok := m.packetsAfterLocked(offset, s.Rooms)
	if !ok {
		// Unknown or too old an offset: Node also refuses, so the client starts fresh.
		return nil, nil
	}
	s.MissedPackets = missed
	return &s, nil
}

// PacketsAfter implements RecoveryLog.
func (m *Memory) PacketsAfter(offset string, rooms []Room) ([]*parser.Packet, bool) {
	if m.window <= 0 {
		return nil, false
	}
	m.recMu.Lock()
	defer m.recMu.Unlock()
	m.expirePackets(m.now())
	return m.packetsAfterLocked(offset, rooms)
}

// packetsAfterLocked lists the stored packets after offset that a socket in rooms would have got;
// false when offset is not one of this adapter's or no longer stored. Holds recMu.
func (m *Memory) packetsAfterLocked(offset string, rooms []Room) ([]*parser.Packet, bool) {
	seqStr, ok := strings.CutPrefix(offset, m.offsetPfx)
	if !ok {
		return nil, false
	}
	seq, err := strconv.ParseUint(seqStr, 36, 64)
	if err != nil || seq < m.firstSeq || seq >= m.firstSeq+uint64(len(m.packets)) {
		return nil, false
	}
	var out []*parser.Packet
	for _, sp := range m.packets[seq-m.firstSeq+1:] {
		if includes(rooms, sp.rooms, sp.except) {
			out = append(out, sp.p)
		}
	}
	return out, true
}

// LastOffset is the offset a stored packet carries as its last argument ("" when none).
func LastOffset(p *parser.Packet) string {
	var args []json.RawMessage
	if p == nil || json.Unmarshal(p.Data, &args) != nil || len(args) == 0 {
		return ""
	}
	var off string
	_ = json.Unmarshal(args[len(args)-1], &off)
	return off
}

func includes(sessionRooms, rooms, except []Room) bool {
	in := len(rooms) == 0
	for _, r := range sessionRooms {
		for _, x := range except {
			if r == x {
				return false
			}
		}
		if !in {
			for _, t := range rooms {
				if r == t {
					in = true
					break
				}
			}
		}
	}
	return in
}
