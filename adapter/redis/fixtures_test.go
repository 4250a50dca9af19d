package redisadapter

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/parser"
)

// The fixtures are what Node's @socket.io/redis-adapter 8.3 (with socket.io 4.8) and
// @socket.io/redis-emitter 5.1 published on a real Redis, captured by clienttest/interop/gen-fixtures.js.
// Each test decodes them with our decoder and, where the message is deterministic, checks that our
// encoder produces the same bytes on the same channel.

type fixture struct {
	Step    string `json:"step"`
	Channel string `json:"channel"`
	Hex     string `json:"hex"`
}

func (f fixture) payload(t *testing.T) []byte {
	b, err := hex.DecodeString(f.Hex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadFixtures(t *testing.T, name string) []fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var list []fixture
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// fixtureAdapter is an adapter of namespace "/" that is never started, for encoding and decoding.
func fixtureAdapter(opts Options) *Adapter {
	return newAdapter(NewCluster(nil, opts), &fakeNsp{name: "/"})
}

func eventPacket(t *testing.T, a *Adapter, data string, atts ...[]byte) *value {
	t.Helper()
	typ := parser.Event
	if len(atts) > 0 {
		typ = parser.BinaryEvent
	}
	v, err := packetValue(&parser.Packet{Type: typ, ID: parser.NoID, Data: json.RawMessage(data), Attachments: atts}, a.packetNsp())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonValue(t *testing.T, s string) *value {
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkSame encodes m (a response to uid `to` when set) and compares with the fixture.
func checkSame(t *testing.T, a *Adapter, f fixture, m *message, to string) {
	t.Helper()
	ch, payload := a.encode(m, to)
	if ch != f.Channel {
		t.Errorf("%s: channel %q, Node used %q", f.Step, ch, f.Channel)
	}
	if want := f.payload(t); !bytes.Equal(payload, want) {
		t.Errorf("%s: payload differs\n ours: %x\n node: %x\n ours: %q\n node: %q", f.Step, payload, want, payload, want)
	}
}

func decodeFixture(t *testing.T, a *Adapter, f fixture) *message {
	t.Helper()
	m, err := a.decode(f.Channel, f.payload(t))
	if err != nil || m == nil {
		t.Fatalf("%s: decode: %v %v", f.Step, m, err)
	}
	return m
}

func TestFixturesClassic(t *testing.T) {
	a := fixtureAdapter(Options{})
	seen := map[string]int{}
	for _, f := range loadFixtures(t, "fixtures-classic.json") {
		seen[f.Step]++
		m := decodeFixture(t, a, f)
		a.uid = m.uid
		opts := func(rooms, except []string, flags adapter.Flags) adapter.BroadcastOptions {
			return adapter.BroadcastOptions{Rooms: rooms, Except: except, Flags: flags}
		}
		switch key := f.Step + "#" + string(rune('0'+seen[f.Step])); key {
		case "broadcast-all#1":
			if m.kind != mBroadcast || len(m.opts.Rooms) != 0 {
				t.Fatalf("%s: %+v", key, m)
			}
			p, err := packetFromValue(m.packet)
			if err != nil || p.Type != parser.Event || p.Nsp != "/" || string(p.Data) != `["all","hi",1,-2,1.5,true,null,{"a":[1,"x"]}]` {
				t.Fatalf("%s: packet %+v %v", key, p, err)
			}
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, string(p.Data)), opts: opts(nil, nil, adapter.Flags{})}, "")
		case "broadcast-room#1":
			p, err := packetFromValue(m.packet)
			if err != nil || p.Type != parser.BinaryEvent || len(p.Attachments) != 1 || !bytes.Equal(p.Attachments[0], []byte{1, 2, 3}) ||
				string(p.Data) != `["room",{"_placeholder":true,"num":0}]` {
				t.Fatalf("%s: packet %+v %v", key, p, err)
			}
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, string(p.Data), []byte{1, 2, 3}), opts: opts([]string{"room1"}, nil, adapter.Flags{})}, "")
		case "broadcast-rooms-except#1":
			if len(m.opts.Rooms) != 2 || len(m.opts.Except) != 1 || m.opts.Except[0] != "x" {
				t.Fatalf("%s: %+v", key, m.opts)
			}
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, `["multi",{"k":"v"}]`), opts: opts([]string{"r1", "r2"}, []string{"x"}, adapter.Flags{})}, "")
		case "broadcast-volatile#1":
			if !m.opts.Flags.Volatile {
				t.Fatalf("%s: flags %+v", key, m.opts.Flags)
			}
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, `["vol",1]`), opts: opts(nil, nil, adapter.Flags{Volatile: true})}, "")
		case "emitter-user#1":
			p, err := packetFromValue(m.packet)
			if m.uid != "emitter" || err != nil || p.Type != parser.BinaryEvent || p.Nsp != "/" || len(m.opts.Rooms) != 1 || m.opts.Rooms[0] != "user:42" ||
				string(p.Data) != `["notify",{"id":5},{"_placeholder":true,"num":0}]` || !bytes.Equal(p.Attachments[0], []byte{0xff}) {
				t.Fatalf("%s: %+v %+v %v", key, m, p, err)
			}
		case "sockets-join#1":
			checkSame(t, a, f, &message{kind: mJoin, uid: m.uid, opts: opts([]string{"r1"}, nil, adapter.Flags{}), rooms: []string{"j"}}, "")
		case "sockets-leave#1":
			checkSame(t, a, f, &message{kind: mLeave, uid: m.uid, rooms: []string{"j"}}, "")
		case "disconnect-sockets#1":
			if !m.close {
				t.Fatalf("%s: close false", key)
			}
			checkSame(t, a, f, &message{kind: mDisconnect, uid: m.uid, opts: opts([]string{"nobody"}, nil, adapter.Flags{}), close: true}, "")
		case "server-side-emit#1":
			checkSame(t, a, f, &message{kind: mServerSideEmit, uid: m.uid, data: jsonValue(t, `["hello",1]`)}, "")
		case "server-side-emit-ack#1":
			if m.requestID == "" {
				t.Fatalf("%s: no request id", key)
			}
			checkSame(t, a, f, &message{kind: mServerSideEmit, uid: m.uid, requestID: m.requestID, data: jsonValue(t, `["hello",2]`)}, "")
		case "server-side-emit-ack#2":
			if m.kind != rServerSideEmit || string(ackReply(m.data)[0]) != `"from-b"` {
				t.Fatalf("%s: %+v", key, m)
			}
			checkSame(t, a, f, &message{kind: rServerSideEmit, requestID: m.requestID, data: vStr("from-b")}, "")
		case "fetch-sockets#1":
			checkSame(t, a, f, &message{kind: mFetch, uid: m.uid, requestID: m.requestID}, "")
		case "fetch-sockets#2":
			list := socketsFromValue(m.sockets)
			if m.kind != rResponse || len(list) != 1 {
				t.Fatalf("%s: %+v", key, m)
			}
			s := list[0]
			if len(s.ID) != 20 || !contains(s.Rooms, "r1") || s.Data.(map[string]any)["user"] != "u1" ||
				s.Handshake.Headers.Get("Upgrade") != "websocket" || s.Handshake.Query.Get("rooms") != "r1" || s.Handshake.Address == "" || s.Handshake.Issued == 0 {
				t.Fatalf("%s: %+v", key, s)
			}
		case "broadcast-ack#1":
			if m.kind != mBroadcast || m.requestID == "" || m.opts.Flags.Timeout != time.Second {
				t.Fatalf("%s: %+v", key, m)
			}
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, requestID: m.requestID, packet: eventPacket(t, a, `["ask","q"]`), opts: opts(nil, nil, adapter.Flags{Timeout: time.Second})}, "")
		case "broadcast-ack#2":
			if m.kind != rClientCount || m.clientCount != 1 {
				t.Fatalf("%s: %+v", key, m)
			}
			checkSame(t, a, f, &message{kind: rClientCount, requestID: m.requestID, clientCount: 1}, "")
		case "broadcast-ack#3":
			if m.kind != rAck || string(ackReply(m.data)[0]) != `"ack-value"` {
				t.Fatalf("%s: %+v", key, m)
			}
			checkSame(t, a, f, &message{kind: rAck, requestID: m.requestID, data: vStr("ack-value")}, "")
		default:
			t.Errorf("fixture %s not checked", key)
		}
	}
	if len(seen) != 12 {
		t.Fatalf("expected 12 captured steps, got %d: %v", len(seen), seen)
	}
}

func TestFixturesSharded(t *testing.T) {
	a := fixtureAdapter(Options{Sharded: true})
	seen := map[string]int{}
	var requester string
	for _, f := range loadFixtures(t, "fixtures-sharded.json") {
		seen[f.Step]++
		m := decodeFixture(t, a, f)
		key := f.Step + "#" + string(rune('0'+seen[f.Step]))
		if seen[f.Step] == 1 {
			requester = m.uid
		}
		a.uid = m.uid
		a.channel = "socket.io#/#"
		switch key {
		case "broadcast-all#1":
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, `["all","hi",1,-2,1.5,true,null,{"a":[1,"x"]}]`)}, "")
		case "broadcast-room#1":
			p, err := packetFromValue(m.packet)
			if err != nil || p.Type != parser.BinaryEvent || !bytes.Equal(p.Attachments[0], []byte{1, 2, 3}) {
				t.Fatalf("%s: %+v %v", key, p, err)
			}
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, string(p.Data), []byte{1, 2, 3}), opts: adapter.BroadcastOptions{Rooms: []string{"room1"}}}, "")
		case "broadcast-rooms-except#1":
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, packet: eventPacket(t, a, `["multi",{"k":"v"}]`), opts: adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"x"}}}, "")
		case "sockets-join#1":
			checkSame(t, a, f, &message{kind: mJoin, uid: m.uid, opts: adapter.BroadcastOptions{Rooms: []string{"r1"}}, rooms: []string{"j"}}, "")
		case "disconnect-sockets#1":
			checkSame(t, a, f, &message{kind: mDisconnect, uid: m.uid, opts: adapter.BroadcastOptions{Rooms: []string{"nobody"}}, close: true}, "")
		case "server-side-emit#1":
			checkSame(t, a, f, &message{kind: mServerSideEmit, uid: m.uid, data: jsonValue(t, `["hello",1]`)}, "")
		case "server-side-emit-ack#1":
			checkSame(t, a, f, &message{kind: mServerSideEmit, uid: m.uid, requestID: m.requestID, data: jsonValue(t, `["hello",2]`)}, "")
		case "server-side-emit-ack#2":
			checkSame(t, a, f, &message{kind: rServerSideEmit, uid: m.uid, requestID: m.requestID, data: vStr("from-b")}, requester)
		case "fetch-sockets#1":
			checkSame(t, a, f, &message{kind: mFetch, uid: m.uid, requestID: m.requestID, opts: adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: time.Second}}}, "")
		case "fetch-sockets#2":
			list := socketsFromValue(m.sockets)
			if m.kind != rResponse || len(list) != 1 || !contains(list[0].Rooms, "r1") {
				t.Fatalf("%s: %+v", key, m)
			}
		case "broadcast-ack#1":
			checkSame(t, a, f, &message{kind: mBroadcast, uid: m.uid, requestID: m.requestID, packet: eventPacket(t, a, `["ask","q"]`), opts: adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: time.Second}}}, "")
		case "broadcast-ack#2":
			checkSame(t, a, f, &message{kind: rClientCount, uid: m.uid, requestID: m.requestID, clientCount: 1}, requester)
		case "broadcast-ack#3":
			checkSame(t, a, f, &message{kind: rAck, uid: m.uid, requestID: m.requestID, data: vStr("ack-value")}, requester)
		default:
			t.Errorf("fixture %s not checked", key)
		}
	}
	if len(seen) != 9 {
		t.Fatalf("expected 9 captured steps, got %d: %v", len(seen), seen)
	}
}
