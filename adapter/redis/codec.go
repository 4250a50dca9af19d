package redisadapter

import (
	"strings"
)

// encode renders m for the wire format in use and returns the channel to publish it on. to is the
// uid of the requesting node for responses ("" otherwise).
func (a *Adapter) encode(m *message, to string) (string, []byte) {
	if a.c.opts.Sharded {
		return a.encodeSharded(m, to)
	}
	return a.encodeClassic(m, to)
}

func (a *Adapter) decode(channel string, payload []byte) (*message, error) {
	if a.c.opts.Sharded {
		return a.decodeSharded(channel, payload)
	}
	return a.decodeClassic(channel, payload)
}

func optID(id string) *value {
	if id == "" {
		return nil
	}
	return vStr(id)
}

// ---- classic (@socket.io/redis-adapter createAdapter) ----

func (a *Adapter) encodeClassic(m *message, to string) (string, []byte) {
	jsonOut := func(v *value) []byte { b, _ := encodeJSON(v, binNode); return b }
	switch m.kind {
	case mBroadcast:
		if m.requestID == "" {
			ch := a.channel
			if len(m.opts.Rooms) == 1 {
				ch += m.opts.Rooms[0] + "#"
			}
			return ch, encodeMsgpack(&value{kind: kArr, arr: []*value{vStr(m.uid), m.packet, optsValue(m.opts, true)}})
		}
		return a.requestChannel, encodeMsgpack(obj("uid", vStr(m.uid), "requestId", vStr(m.requestID),
			"type", vInt(reqBroadcast), "packet", m.packet, "opts", optsValue(m.opts, true)))
	case mJoin, mLeave:
		t := int64(reqRemoteJoin)
		if m.kind == mLeave {
			t = reqRemoteLeave
		}
		return a.requestChannel, jsonOut(obj("uid", vStr(m.uid), "type", vInt(t), "opts", optsValue(m.opts, false), "rooms", vStrs(m.rooms)))
	case mDisconnect:
		return a.requestChannel, jsonOut(obj("uid", vStr(m.uid), "type", vInt(reqRemoteDisconnect), "opts", optsValue(m.opts, false), "close", vBool(m.close)))
	case mFetch:
		return a.requestChannel, jsonOut(obj("uid", vStr(m.uid), "requestId", vStr(m.requestID), "type", vInt(reqRemoteFetch), "opts", optsValue(m.opts, false)))
	case mAllRooms:
		return a.requestChannel, jsonOut(obj("uid", vStr(m.uid), "requestId", vStr(m.requestID), "type", vInt(reqAllRooms)))
	case mServerSideEmit:
		return a.requestChannel, jsonOut(obj("uid", vStr(m.uid), "requestId", optID(m.requestID), "type", vInt(reqServerSideEmit), "data", m.data))
	case rServerSideEmit:
		// Node answers server-side emits on the common response channel whatever the option says.
		return a.responseChannel, jsonOut(obj("type", vInt(reqServerSideEmit), "requestId", vStr(m.requestID), "data", m.data))
	}
	ch := a.responseChannel
	if a.c.opts.PublishOnSpecificResponseChannel && to != "" {
		ch = a.responseChannel + to + "#"
	}
	switch m.kind {
	case rClientCount:
		return ch, jsonOut(obj("type", vInt(reqBroadcastClientCount), "requestId", vStr(m.requestID), "clientCount", vInt(int64(m.clientCount))))
	case rAck:
		return ch, encodeMsgpack(obj("type", vInt(reqBroadcastAck), "requestId", vStr(m.requestID), "packet", m.data))
	default: // rResponse
		return ch, jsonOut(obj("requestId", vStr(m.requestID), "sockets", m.sockets, "rooms", m.roomList))
	}
}

func (a *Adapter) decodeClassic(channel string, payload []byte) (*message, error) {
	if strings.HasPrefix(channel, a.channel) {
		v, err := decodeMsgpack(payload)
		if err != nil {
			return nil, err
		}
		if v.kind != kArr || len(v.arr) < 3 {
			return nil, errMalformed
		}
		uid, _ := v.arr[0].str()
		return &message{kind: mBroadcast, uid: uid, packet: v.arr[1], opts: optsFromValue(v.arr[2])}, nil
	}
	v, err := decodeAny(payload)
	if err != nil {
		return nil, err
	}
	if v.kind != kObj {
		return nil, errMalformed
	}
	m := &message{}
	m.uid, _ = v.get("uid").str()
	m.requestID, _ = v.get("requestId").str()
	t, hasType := v.get("type").int()
	if channel == a.requestChannel {
		if !hasType {
			return nil, errMalformed
		}
		opts := optsFromValue(v.get("opts"))
		switch t {
		case reqSockets:
			m.kind = mSockets
			m.opts.Rooms = v.get("rooms").strs()
		case reqAllRooms:
			m.kind = mAllRooms
		case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
			m.kind = map[int64]msgKind{reqRemoteJoin: mJoin, reqRemoteLeave: mLeave, reqRemoteDisconnect: mDisconnect}[t]
			m.opts = opts
			m.rooms = v.get("rooms").strs()
			if c := v.get("close"); c != nil && c.kind == kBool {
				m.close = c.b
			}
			if v.get("opts") == nil {
				m.sid, _ = v.get("sid").str()
				m.room, _ = v.get("room").str()
				if m.sid == "" {
					return nil, errMalformed
				}
			}
		case reqRemoteFetch:
			m.kind = mFetch
			m.opts = opts
		case reqServerSideEmit:
			m.kind = mServerSideEmit
			m.data = v.get("data")
		case reqBroadcast:
			m.kind = mBroadcast
			m.packet = v.get("packet")
			m.opts = opts
			if m.requestID == "" {
				return nil, errMalformed
			}
		default:
			return nil, nil
		}
		return m, nil
	}
	// a response channel
	switch {
	case hasType && t == reqBroadcastClientCount:
		m.kind = rClientCount
		n, _ := v.get("clientCount").int()
		m.clientCount = int(n)
	case hasType && t == reqBroadcastAck:
		m.kind = rAck
		m.data = v.get("packet")
	case hasType && t == reqServerSideEmit:
		m.kind = rServerSideEmit
		m.data = v.get("data")
	default:
		m.kind = rResponse
		m.sockets = v.get("sockets")
		m.roomList = v.get("rooms")
	}
	return m, nil
}

// ---- sharded (@socket.io/redis-adapter createShardedAdapter, ClusterAdapter messages) ----

func (a *Adapter) encodeSharded(m *message, to string) (string, []byte) {
	var t int64
	var data *value
	ch := a.channel
	switch m.kind {
	case mBroadcast:
		t = cmBroadcast
		data = obj("packet", m.packet, "requestId", optID(m.requestID), "opts", optsValue(m.opts, true))
		// Broadcasts with ack stay on the main channel: every node must answer with its client count.
		if m.requestID == "" && len(m.opts.Rooms) == 1 && a.publishOnRoomChannel(m.opts.Rooms[0]) {
			ch = a.channel + m.opts.Rooms[0] + "#"
		}
	case mJoin:
		t, data = cmSocketsJoin, obj("opts", optsValue(m.opts, true), "rooms", vStrs(m.rooms))
	case mLeave:
		t, data = cmSocketsLeave, obj("opts", optsValue(m.opts, true), "rooms", vStrs(m.rooms))
	case mDisconnect:
		t, data = cmDisconnectSockets, obj("opts", optsValue(m.opts, true), "close", vBool(m.close))
	case mFetch:
		t, data = cmFetchSockets, obj("opts", optsValue(m.opts, true), "requestId", vStr(m.requestID))
	case mServerSideEmit:
		t, data = cmServerSideEmit, obj("requestId", optID(m.requestID), "packet", m.data)
	case rResponse:
		t, data = cmFetchSocketsResponse, obj("requestId", vStr(m.requestID), "sockets", m.sockets)
	case rServerSideEmit:
		t, data = cmServerSideEmitResponse, obj("requestId", vStr(m.requestID), "packet", m.data)
	case rClientCount:
		t, data = cmBroadcastClientCount, obj("requestId", vStr(m.requestID), "clientCount", vInt(int64(m.clientCount)))
	case rAck:
		t, data = cmBroadcastAck, obj("requestId", vStr(m.requestID), "packet", m.data)
	}
	if to != "" {
		ch = a.channel + to + "#"
	}
	msg := obj("type", vInt(t), "data", data, "uid", vStr(m.uid), "nsp", vStr(a.nsp.Name()))
	if data.hasBinary() {
		return ch, encodeMsgpack(msg)
	}
	b, _ := encodeJSON(msg, binNode)
	return ch, b
}

func (a *Adapter) decodeSharded(channel string, payload []byte) (*message, error) {
	v, err := decodeAny(payload)
	if err != nil {
		return nil, err
	}
	if v.kind != kObj {
		return nil, errMalformed
	}
	if nsp, _ := v.get("nsp").str(); nsp != a.nsp.Name() {
		return nil, nil
	}
	t, ok := v.get("type").int()
	if !ok {
		return nil, errMalformed
	}
	d := v.get("data")
	m := &message{}
	m.uid, _ = v.get("uid").str()
	m.requestID, _ = d.get("requestId").str()
	opts := optsFromValue(d.get("opts"))
	switch t {
	case cmBroadcast:
		m.kind, m.packet, m.opts = mBroadcast, d.get("packet"), opts
	case cmSocketsJoin:
		m.kind, m.opts, m.rooms = mJoin, opts, d.get("rooms").strs()
	case cmSocketsLeave:
		m.kind, m.opts, m.rooms = mLeave, opts, d.get("rooms").strs()
	case cmDisconnectSockets:
		m.kind, m.opts = mDisconnect, opts
		if c := d.get("close"); c != nil && c.kind == kBool {
			m.close = c.b
		}
	case cmFetchSockets:
		m.kind, m.opts = mFetch, opts
	case cmServerSideEmit:
		m.kind, m.data = mServerSideEmit, d.get("packet")
	case cmFetchSocketsResponse:
		m.kind, m.sockets = rResponse, d.get("sockets")
	case cmServerSideEmitResponse:
		m.kind, m.data = rServerSideEmit, d.get("packet")
	case cmBroadcastClientCount:
		m.kind = rClientCount
		n, _ := d.get("clientCount").int()
		m.clientCount = int(n)
	case cmBroadcastAck:
		m.kind, m.data = rAck, d.get("packet")
	default: // heartbeats and ADAPTER_CLOSE of ClusterAdapterWithHeartbeat peers: nothing to do
		return nil, nil
	}
	return m, nil
}

// publishOnRoomChannel is Node's computeChannel for a broadcast to one room.
func (a *Adapter) publishOnRoomChannel(room string) bool {
	switch a.c.opts.SubscriptionMode {
	case "dynamic-private":
		return true
	case "static":
		return false
	}
	return !looksLikeSocketID(room)
}
