package redisadapter

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/parser"
)

func TestValueRoundTrip(t *testing.T) {
	for _, doc := range []string{
		`["e","s",0,-1,127,128,255,65535,65536,-129,4294967296,9007199254740993,1.5,-0.25,1e-7,true,false,null,{},[],{"z":1,"a":[{"b":null}]}]`,
		`{"unicode":"héllo ✓","long":"` + strings.Repeat("x", 300) + `"}`,
	} {
		v, err := decodeJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeMsgpack(encodeMsgpack(v))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := encodeJSON(back, binBase64)
		if string(got) != doc {
			t.Fatalf("round trip:\n got %s\nwant %s", got, doc)
		}
	}
	// Integral floats are integers in JavaScript: encoded as msgpack ints, like notepack does.
	v, _ := decodeJSON([]byte(`2.0`))
	if b := encodeMsgpack(v); !bytes.Equal(b, []byte{0x02}) {
		t.Fatalf("2.0 encoded as %x", b)
	}
}

func TestBinaryModes(t *testing.T) {
	v, err := fromJSON(json.RawMessage(`["x",{"_placeholder":true,"num":0},{"deep":{"_placeholder":true,"num":1}}]`), [][]byte{{1}, {2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.hasBinary() {
		t.Fatal("placeholders not resolved")
	}
	back, err := decodeMsgpack(encodeMsgpack(v))
	if err != nil {
		t.Fatal(err)
	}
	data, atts := encodeJSON(back, binPlaceholder)
	if string(data) != `["x",{"_placeholder":true,"num":0},{"deep":{"_placeholder":true,"num":1}}]` || len(atts) != 2 || !bytes.Equal(atts[1], []byte{2, 3}) {
		t.Fatalf("placeholder mode: %s %q", data, atts)
	}
	b64, _ := encodeJSON(back, binBase64)
	if string(b64) != `["x","AQ==",{"deep":"AgM="}]` {
		t.Fatalf("base64 mode: %s", b64)
	}
	nodeForm, _ := encodeJSON(back, binNode)
	if string(nodeForm) != `["x",{"type":"Buffer","data":[1]},{"deep":{"type":"Buffer","data":[2,3]}}]` {
		t.Fatalf("node mode: %s", nodeForm)
	}
	// A placeholder pointing past the attachments stays an object.
	v, _ = fromJSON(json.RawMessage(`[{"_placeholder":true,"num":5}]`), [][]byte{{1}})
	if v.hasBinary() {
		t.Fatal("out of range placeholder resolved")
	}
}

// Documents deeper than maxDepth are refused instead of exhausting the stack.
func TestDepthLimit(t *testing.T) {
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := decodeJSON([]byte(ok)); err != nil {
		t.Fatalf("depth %d refused: %v", maxDepth, err)
	}
	deep := strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)
	if _, err := decodeJSON([]byte(deep)); err == nil {
		t.Fatal("JSON deeper than the limit accepted")
	}
	mp := bytes.Repeat([]byte{0x91}, maxDepth+2)
	mp = append(mp, 0xc0)
	if _, err := decodeMsgpack(mp); err == nil {
		t.Fatal("msgpack deeper than the limit accepted")
	}
}

// Garbage on the channels is ignored, never a panic.
func TestMalformedMessages(t *testing.T) {
	for _, opts := range []Options{{}, {Sharded: true}} {
		a := fixtureAdapter(opts)
		for _, ch := range []string{a.channel, a.channel + "room#", a.requestChannel, a.responseChannel, a.specificResponse} {
			for _, p := range [][]byte{nil, {0xc1}, {0x93, 0xa1}, []byte("{"), []byte(`{"type":"x"}`), []byte(`[1,2,3]`),
				[]byte(`{"type":7,"requestId":"r"}`), []byte(`{"type":3,"nsp":"/","data":{"packet":5}}`), {0x93, 0xc0, 0xc0, 0xc0}} {
				a.onMessage(ch, p)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"uid":"a","type":5,"requestId":"r","opts":{"rooms":["x"],"except":[]}}`))
	f.Add([]byte{0x93, 0xa1, 'u', 0x83, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa4, 'd', 'a', 't', 'a', 0x91, 0xa1, 'e', 0xa3, 'n', 's', 'p', 0xa1, '/', 0x80})
	classic := fixtureAdapter(Options{})
	sharded := fixtureAdapter(Options{Sharded: true})
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, a := range []*Adapter{classic, sharded} {
			for _, ch := range []string{a.channel, a.requestChannel, a.responseChannel} {
				if m, err := a.decode(ch, p); err == nil && m != nil && m.packet != nil {
					_, _ = packetFromValue(m.packet)
				}
			}
		}
	})
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`socket.io#/a*b?[c]\#`); got != `socket.io#/a\*b\?\[c\]\\#` {
		t.Fatalf("got %s", got)
	}
}

// The publish queue is bounded: past QueueSize messages are dropped and counted, the caller never waits.
func TestPublishQueueBound(t *testing.T) {
	c := NewCluster(nil, Options{QueueSize: 2, Logger: quietLogger()})
	c.running = true
	c.out = make(chan outMsg, c.opts.QueueSize) // no publishing goroutine: the queue fills up
	c.up.Store(true)
	start := time.Now()
	for i := 0; i < 5; i++ {
		c.publish("ch", []byte("x"))
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("publish waited on a full queue")
	}
	if s := c.Stats(); s.Dropped != 3 || len(c.out) != 2 {
		t.Fatalf("dropped %d, queued %d", s.Dropped, len(c.out))
	}
	// While Redis is down nothing is queued.
	c.up.Store(false)
	<-c.out
	c.publish("ch", []byte("y"))
	if s := c.Stats(); s.Dropped != 4 || len(c.out) != 1 {
		t.Fatalf("down: dropped %d, queued %d", s.Dropped, len(c.out))
	}
}

// Sharded mode subscribes a room's channel while the room has local members; which rooms get one
// depends on the subscription mode.
func TestShardedRoomChannels(t *testing.T) {
	s1, s2 := "AAAAAAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAAAAAA2"
	for _, tc := range []struct {
		mode          string
		joins, leaves []string // expected channel operations, in any order
		sidChannel    bool
	}{
		{"dynamic", []string{"+socket.io#/#lobby#", "+socket.io#/#game#"}, []string{"-socket.io#/#lobby#", "-socket.io#/#game#"}, false},
		{"static", nil, nil, false},
		{"dynamic-private", []string{"+socket.io#/#" + s1 + "#", "+socket.io#/#lobby#", "+socket.io#/#" + s2 + "#", "+socket.io#/#game#"},
			[]string{"-socket.io#/#" + s2 + "#", "-socket.io#/#lobby#", "-socket.io#/#game#"}, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c := NewCluster(nil, Options{Sharded: true, SubscriptionMode: tc.mode, Logger: quietLogger()})
			c.running = true
			c.out = make(chan outMsg, 100)
			a := newAdapter(c, &fakeNsp{name: "/", sockets: map[string]*fakeSocket{}})
			ops := func() []string {
				var out []string
				for len(c.out) > 0 {
					m := <-c.out
					op := "+"
					if m.op == opSUnsubscribe {
						op = "-"
					}
					out = append(out, op+m.channel)
				}
				sort.Strings(out)
				return out
			}
			sorted := func(l []string) []string { l = append([]string(nil), l...); sort.Strings(l); return l }
			a.AddAll(s1, s1, "lobby")
			a.AddAll(s2, s2, "lobby", "game")
			if got := ops(); strings.Join(got, " ") != strings.Join(sorted(tc.joins), " ") {
				t.Fatalf("joins: %q", got)
			}
			a.Del(s1, "lobby")
			a.Del(s1, "lobby") // not a member any more: no effect
			if got := ops(); len(got) != 0 {
				t.Fatalf("lobby still has s2: %q", got)
			}
			a.DelAll(s2)
			if got := ops(); strings.Join(got, " ") != strings.Join(sorted(tc.leaves), " ") {
				t.Fatalf("leaves: %q", got)
			}
			// Publishing to one room uses its channel when the mode gives rooms channels.
			ch, _ := a.encode(&message{kind: mBroadcast, packet: vInt(1), opts: adapter.BroadcastOptions{Rooms: []string{"lobby"}}}, "")
			if want := tc.mode != "static"; (ch == "socket.io#/#lobby#") != want {
				t.Fatalf("room broadcast on %s", ch)
			}
			ch, _ = a.encode(&message{kind: mBroadcast, packet: vInt(1), opts: adapter.BroadcastOptions{Rooms: []string{s1}}}, "")
			if (ch == "socket.io#/#"+s1+"#") != tc.sidChannel {
				t.Fatalf("socket id broadcast on %s", ch)
			}
		})
	}
}

// A local request with no other node answers at once.
func TestRequestAlone(t *testing.T) {
	rs := startRedis(t)
	c := NewCluster(rs.Client(t), Options{Logger: quietLogger()})
	nsp := &fakeNsp{name: "/", sockets: map[string]*fakeSocket{"s1": {id: "s1"}}}
	a := c.Factory()(nsp)
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.AddAll("s1", "s1", "r")
	list, err := a.FetchSockets(context.Background(), adapter.BroadcastOptions{})
	if err != nil || len(list) != 1 {
		t.Fatalf("%v %v", list, err)
	}
	replies, err := a.ServerSideEmitWithAck(context.Background(), []json.RawMessage{json.RawMessage(`"x"`)})
	if err != nil || len(replies) != 0 {
		t.Fatalf("%v %v", replies, err)
	}
	rooms, err := a.(*Adapter).AllRooms(context.Background())
	if err != nil || len(rooms) != 2 {
		t.Fatalf("%v %v", rooms, err)
	}
	if err := a.Broadcast(&parser.Packet{Type: parser.Event, ID: parser.NoID, Data: json.RawMessage(`["e"]`)}, adapter.BroadcastOptions{Rooms: []string{"r"}}); err != nil {
		t.Fatal(err)
	}
	if n := len(nsp.sockets["s1"].written); n != 1 {
		t.Fatalf("local delivery: %d", n)
	}
}

// Redis down when the node starts: Init does not hang, local delivery works, and the node joins the
// cluster once Redis is up.
func TestStartWithRedisDown(t *testing.T) {
	rs := startRedis(t)
	rs.Kill()
	cl := redis.NewClient(&redis.Options{Addr: rs.Addr(), DialTimeout: 500 * time.Millisecond})
	defer cl.Close()
	c := NewCluster(cl, Options{Logger: quietLogger()})
	nsp := &fakeNsp{name: "/", sockets: map[string]*fakeSocket{"s1": {id: "s1"}}}
	a := c.Factory()(nsp)
	start := time.Now()
	_ = a.Init()
	defer a.Close()
	if time.Since(start) > 3*time.Second {
		t.Fatalf("Init took %v with Redis down", time.Since(start))
	}
	if c.Healthy() || c.Check(context.Background()) == nil {
		t.Fatal("healthy without Redis")
	}
	a.AddAll("s1", "s1")
	_ = a.Broadcast(&parser.Packet{Type: parser.Event, ID: parser.NoID, Data: json.RawMessage(`["e"]`)}, adapter.BroadcastOptions{})
	if len(nsp.sockets["s1"].written) != 1 {
		t.Fatal("local delivery failed with Redis down")
	}
	if n, err := a.ServerCount(context.Background()); n != 1 || err != nil {
		t.Fatalf("ServerCount with Redis down: %d %v", n, err)
	}
	rs.Start()
	eventually(t, 10*time.Second, "healthy after Redis started", c.Healthy)
	// Subscribed: the request channel has our subscriber.
	eventually(t, 3*time.Second, "subscribed", func() bool {
		n, _ := rs.Client(t).PubSubNumSub(context.Background(), "socket.io-request#/#").Result()
		return n["socket.io-request#/#"] == 1
	})
}

type recordingSocket struct {
	fakeSocket
	joined, left []string
	closed       *bool
}

func (s *recordingSocket) Join(r ...adapter.Room)  { s.joined = append(s.joined, r...) }
func (s *recordingSocket) Leave(r ...adapter.Room) { s.left = append(s.left, r...) }
func (s *recordingSocket) Disconnect(c bool)       { s.closed = &c }

type recordingNsp struct {
	fakeNsp
	s *recordingSocket
}

func (n *recordingNsp) Socket(id adapter.SocketID) adapter.Socket {
	if id == n.s.id {
		return n.s
	}
	return nil
}

// The single-socket requests of older @socket.io/redis-adapter versions ({sid, room}) are applied.
func TestLegacySingleSocketRequests(t *testing.T) {
	rec := &recordingSocket{fakeSocket: fakeSocket{id: "s1"}}
	nsp := &recordingNsp{fakeNsp: fakeNsp{name: "/"}, s: rec}
	a := newAdapter(NewCluster(nil, Options{Logger: quietLogger()}), nsp)
	a.onMessage(a.requestChannel, []byte(`{"uid":"other","requestId":"r1","type":2,"sid":"s1","room":"lobby"}`))
	a.onMessage(a.requestChannel, []byte(`{"uid":"other","requestId":"r2","type":3,"sid":"s1","room":"old"}`))
	a.onMessage(a.requestChannel, []byte(`{"uid":"other","requestId":"r3","type":4,"sid":"s1","close":true}`))
	a.onMessage(a.requestChannel, []byte(`{"uid":"other","requestId":"r4","type":2,"sid":"unknown","room":"x"}`))
	if len(rec.joined) != 1 || rec.joined[0] != "lobby" || len(rec.left) != 1 || rec.left[0] != "old" || rec.closed == nil || !*rec.closed {
		t.Fatalf("joined %v left %v closed %v", rec.joined, rec.left, rec.closed)
	}
	// Our own requests were applied when sent: ignored on receipt.
	a.onMessage(a.requestChannel, []byte(`{"uid":"`+a.uid+`","type":2,"sid":"s1","room":"again"}`))
	if len(rec.joined) != 1 {
		t.Fatalf("own request applied twice: %v", rec.joined)
	}
}
