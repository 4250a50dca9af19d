package redisadapter

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/parser"
)

// Request types of @socket.io/redis-adapter (lib/index.ts, RequestType), used on the request and
// response channels of the classic adapter.
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// Message types of socket.io-adapter's ClusterAdapter (MessageType), used by the sharded adapter.
const (
	cmInitialHeartbeat       = 1
	cmHeartbeat              = 2
	cmBroadcast              = 3
	cmSocketsJoin            = 4
	cmSocketsLeave           = 5
	cmDisconnectSockets      = 6
	cmFetchSockets           = 7
	cmFetchSocketsResponse   = 8
	cmServerSideEmit         = 9
	cmServerSideEmitResponse = 10
	cmBroadcastClientCount   = 11
	cmBroadcastAck           = 12
	cmAdapterClose           = 13
)

// kind is what a message means, independent of the wire format (classic or sharded).
type msgKind uint8

const (
	mBroadcast      msgKind = iota + 1 // packet, opts; requestID set: with acks
	mJoin                              // opts, rooms (or legacy sid/room)
	mLeave                             // opts, rooms (or legacy sid/room)
	mDisconnect                        // opts, close (or legacy sid)
	mFetch                             // opts, requestID
	mSockets                           // legacy SOCKETS request: opts.rooms, requestID
	mAllRooms                          // requestID
	mServerSideEmit                    // data (the args array); requestID set: with ack
	rResponse                          // generic response: sockets / rooms, by the pending request's kind
	rServerSideEmit                    // data: one node's ack argument
	rClientCount                       // clientCount
	rAck                               // data: one client's ack argument
)

// message is a decoded message of either wire format.
type message struct {
	kind        msgKind
	uid         string
	requestID   string
	packet      *value
	opts        adapter.BroadcastOptions
	rooms       []string
	close       bool
	data        *value
	sockets     *value
	roomList    *value
	clientCount int
	sid, room   string // legacy single-socket requests
}

var errMalformed = errors.New("redisadapter: malformed message")

// decodeAny parses a payload: JSON when it starts with "{", MessagePack otherwise (as Node does).
func decodeAny(payload []byte) (*value, error) {
	if len(payload) > 0 && payload[0] == '{' {
		return decodeJSON(payload)
	}
	return decodeMsgpack(payload)
}

// ---- packets and options ----

// packetValue renders a packet as the socket.io-parser packet object Node's adapters publish:
// {type, data, nsp[, id]} with binary attachments inline (so type is EVENT/ACK, never BINARY_*).
// nsp "" leaves it out (the sharded adapter's messages carry the namespace outside the packet).
func packetValue(p *parser.Packet, nsp string) (*value, error) {
	data, err := fromJSON(p.Data, p.Attachments)
	if err != nil {
		return nil, err
	}
	t := p.Type
	switch t {
	case parser.BinaryEvent:
		t = parser.Event
	case parser.BinaryAck:
		t = parser.Ack
	}
	var id *value
	if p.ID != parser.NoID {
		id = vInt(p.ID)
	}
	var ns *value
	if nsp != "" {
		ns = vStr(nsp)
	}
	return obj("type", vInt(int64(t)), "data", data, "nsp", ns, "id", id), nil
}

// packetFromValue is the inverse of packetValue; a missing nsp means "/".
func packetFromValue(v *value) (*parser.Packet, error) {
	if v == nil || v.kind != kObj {
		return nil, errMalformed
	}
	t, ok := v.get("type").int()
	if !ok {
		return nil, errMalformed
	}
	p := &parser.Packet{Type: parser.Type(t), Nsp: "/", ID: parser.NoID}
	if nsp, ok := v.get("nsp").str(); ok {
		p.Nsp = nsp
	}
	if id, ok := v.get("id").int(); ok {
		p.ID = id
	}
	if d := v.get("data"); d != nil {
		p.Data, p.Attachments = encodeJSON(d, binPlaceholder)
	}
	switch {
	case len(p.Attachments) > 0 && p.Type == parser.Event:
		p.Type = parser.BinaryEvent
	case len(p.Attachments) > 0 && p.Type == parser.Ack:
		p.Type = parser.BinaryAck
	case len(p.Attachments) == 0 && p.Type == parser.BinaryEvent:
		p.Type = parser.Event
	case len(p.Attachments) == 0 && p.Type == parser.BinaryAck:
		p.Type = parser.Ack
	}
	return p, nil
}

// optsValue renders broadcast options as Node does: {rooms: [...], except: [...], flags: {...}}.
func optsValue(o adapter.BroadcastOptions, withFlags bool) *value {
	rooms := o.Rooms
	if rooms == nil {
		rooms = []string{}
	}
	except := dedup(o.Except)
	if !withFlags {
		return obj("rooms", vStrs(rooms), "except", vStrs(except))
	}
	flags := obj()
	if o.Flags.Volatile {
		flags.keys = append(flags.keys, "volatile")
		flags.vals = append(flags.vals, vBool(true))
	}
	if o.Flags.Timeout > 0 {
		flags.keys = append(flags.keys, "timeout")
		flags.vals = append(flags.vals, vInt(o.Flags.Timeout.Milliseconds()))
	}
	return obj("rooms", vStrs(rooms), "except", vStrs(except), "flags", flags)
}

func optsFromValue(v *value) adapter.BroadcastOptions {
	o := adapter.BroadcastOptions{Rooms: v.get("rooms").strs(), Except: v.get("except").strs()}
	if f := v.get("flags"); f != nil {
		o.Flags.Volatile = f.get("volatile") != nil && f.get("volatile").kind == kBool && f.get("volatile").b
		if ms, ok := f.get("timeout").int(); ok && ms > 0 {
			o.Flags.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	return o
}

func dedup(list []string) []string {
	out := make([]string, 0, len(list))
	seen := make(map[string]struct{}, len(list))
	for _, s := range list {
		if _, dup := seen[s]; !dup {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// ---- arguments and acks ----

// argsValue renders server-side emit arguments (JSON values) as an array.
func argsValue(args []json.RawMessage) (*value, error) {
	v := &value{kind: kArr, arr: make([]*value, 0, len(args))}
	for _, a := range args {
		e, err := fromJSON(a, nil)
		if err != nil {
			return nil, err
		}
		v.arr = append(v.arr, e)
	}
	return v, nil
}

// argsFromValue splits an array into JSON values (binary as base64 strings).
func argsFromValue(v *value) []json.RawMessage {
	if v == nil || v.kind != kArr {
		return nil
	}
	out := make([]json.RawMessage, 0, len(v.arr))
	for _, e := range v.arr {
		raw, _ := encodeJSON(e, binBase64)
		out = append(out, raw)
	}
	return out
}

// ackArg is the single argument Node's adapters forward for an acknowledgement: the first one.
func ackArg(reply []json.RawMessage) *value {
	if len(reply) == 0 {
		return &value{kind: kNull}
	}
	v, err := fromJSON(reply[0], nil)
	if err != nil {
		return &value{kind: kNull}
	}
	return v
}

// ackReply is what an AckFunc receives for a remote acknowledgement: its one argument.
func ackReply(v *value) []json.RawMessage {
	if v == nil {
		v = &value{kind: kNull}
	}
	raw, _ := encodeJSON(v, binBase64)
	return []json.RawMessage{raw}
}

// ---- sockets ----

func socketsValue(list []adapter.SocketDetails) *value {
	if list == nil {
		list = []adapter.SocketDetails{}
	}
	return fromAny(list)
}

// socketFromValue converts a socket of a FETCH response (Node's form: header and query values as
// strings) to SocketDetails.
func socketFromValue(v *value) (adapter.SocketDetails, bool) {
	id, ok := v.get("id").str()
	if !ok {
		return adapter.SocketDetails{}, false
	}
	d := adapter.SocketDetails{ID: id, Rooms: v.get("rooms").strs(), Data: v.get("data").toAny()}
	if d.Rooms == nil {
		d.Rooms = []string{}
	}
	h := v.get("handshake")
	d.Handshake.Headers = http.Header{}
	if hs := h.get("headers"); hs != nil && hs.kind == kObj {
		for i, k := range hs.keys {
			key := http.CanonicalHeaderKey(k)
			switch hv := hs.vals[i]; hv.kind {
			case kStr:
				d.Handshake.Headers[key] = []string{hv.s}
			case kArr:
				d.Handshake.Headers[key] = hv.strs()
			case kNum:
				d.Handshake.Headers[key] = []string{hv.num}
			}
		}
	}
	d.Handshake.Query = url.Values{}
	if q := h.get("query"); q != nil && q.kind == kObj {
		for i, k := range q.keys {
			switch qv := q.vals[i]; qv.kind {
			case kStr:
				d.Handshake.Query[k] = []string{qv.s}
			case kArr:
				d.Handshake.Query[k] = qv.strs()
			case kNum:
				d.Handshake.Query[k] = []string{qv.num}
			}
		}
	}
	d.Handshake.Time, _ = h.get("time").str()
	d.Handshake.Address, _ = h.get("address").str()
	d.Handshake.URL, _ = h.get("url").str()
	d.Handshake.Issued, _ = h.get("issued").int()
	if b := h.get("xdomain"); b != nil && b.kind == kBool {
		d.Handshake.XDomain = b.b
	}
	if b := h.get("secure"); b != nil && b.kind == kBool {
		d.Handshake.Secure = b.b
	}
	d.Handshake.Auth = json.RawMessage("{}")
	if a := h.get("auth"); a != nil {
		d.Handshake.Auth, _ = encodeJSON(a, binBase64)
	}
	return d, true
}

func socketsFromValue(v *value) []adapter.SocketDetails {
	if v == nil || v.kind != kArr {
		return nil
	}
	out := make([]adapter.SocketDetails, 0, len(v.arr))
	for _, e := range v.arr {
		if d, ok := socketFromValue(e); ok {
			out = append(out, d)
		}
	}
	return out
}
