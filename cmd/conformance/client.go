package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/socketio"
)

// runClientSuite serves what socket.io-client's own test suite expects
// (packages/socket.io-client/test/support/server.ts in socketio/socket.io), with connection state
// recovery on.
func runClientSuite(addr string) error {
	io := socketio.NewServer(socketio.Options{
		Engine: engineio.Options{
			PingInterval: 2000 * time.Millisecond,
			AllowRequest: func(*http.Request) error {
				// a fixed delay, like the reference server, for the client's connection-timeout tests
				time.Sleep(10 * time.Millisecond)
				return nil
			},
			CORS: &engineio.CORSOptions{Origins: []string{"*"}},
		},
		ConnectionStateRecovery: &socketio.RecoveryOptions{},
	})

	io.Of("/foo").OnConnection(func(s *socketio.Socket) {
		s.On("getId", func(ev *socketio.Event) { _ = ev.Ack(s.ID()) })
	})
	for _, name := range []string{"/timeout_socket", "/valid", "/asd"} {
		io.Of(name).OnConnection(func(*socketio.Socket) {}) // registered namespaces
	}
	io.Of("/abc").OnConnection(func(s *socketio.Socket) { _ = s.Emit("handshake", s.Handshake()) })

	io.Use(func(s *socketio.Socket) error {
		if s.Handshake().Query.Get("fail") != "" {
			return errors.New("Auth failed (main namespace)")
		}
		return nil
	})
	io.Of("/no").Use(func(*socketio.Socket) error { return errors.New("Auth failed (custom namespace)") })

	io.OnConnection(clientSuiteMain)

	// EXTRA: what clienttest/js needs beyond server.ts (mirrors clienttest/js/reference-server.js).
	io.Of("/jstest").OnConnection(jstestHandler)
	auth := io.Of("/jstest-auth")
	auth.Use(func(s *socketio.Socket) error {
		var a struct {
			Token *string `json:"token"`
		}
		_ = json.Unmarshal(s.Handshake().Auth, &a)
		if a.Token != nil && *a.Token == "secret" {
			s.SetData("alice")
			return nil
		}
		return &socketio.ConnectError{Message: "unauthorized", Data: map[string]any{"code": 401, "token": a.Token}}
	})
	auth.OnConnection(func(s *socketio.Socket) {
		s.On("whoami", func(ev *socketio.Event) { _ = ev.Ack(s.Data()) })
	})
	return serve(addr, io, io.Close)
}

// jstestHandler: rooms, broadcasts, volatile, server-initiated acks and disconnects.
func jstestHandler(s *socketio.Socket) {
	rooms := func() []string {
		r := s.Rooms()
		sort.Strings(r)
		return r
	}
	s.On("join", func(ev *socketio.Event) {
		var list []string
		var one string
		if ev.Decode(&one) == nil && one != "" {
			list = []string{one}
		} else if err := ev.Decode(&list); err != nil {
			return
		}
		s.Join(list...)
		_ = ev.Ack(rooms())
	})
	s.On("leave", func(ev *socketio.Event) {
		var room string
		_ = ev.Decode(&room)
		s.Leave(room)
		_ = ev.Ack(rooms())
	})
	s.On("rooms", func(ev *socketio.Event) { _ = ev.Ack(rooms()) })
	s.On("broadcast", func(ev *socketio.Event) {
		var o struct {
			Event    string   `json:"event"`
			Args     []any    `json:"args"`
			To       []string `json:"to"`
			Except   []string `json:"except"`
			Self     bool     `json:"self"`
			Volatile bool     `json:"volatile"`
		}
		if err := ev.Decode(&o); err != nil {
			return
		}
		op := s.Broadcast()
		if o.Self {
			op = s.Namespace().Except()
		}
		if len(o.To) > 0 {
			op = op.To(o.To...)
		}
		if len(o.Except) > 0 {
			op = op.Except(o.Except...)
		}
		if o.Volatile {
			op = op.Volatile()
		}
		_ = op.Emit(o.Event, o.Args...)
		_ = ev.Ack()
	})
	s.On("ask", func(ev *socketio.Event) {
		var o struct {
			Event   string `json:"event"`
			Args    []any  `json:"args"`
			Timeout int    `json:"timeout"`
		}
		if err := ev.Decode(&o); err != nil {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.Timeout)*time.Millisecond)
			defer cancel()
			replies, err := s.EmitWithAck(ctx, o.Event, o.Args...)
			if err != nil {
				_ = ev.Ack(map[string]any{"ok": false, "error": "operation has timed out"})
				return
			}
			_ = ev.Ack(map[string]any{"ok": true, "replies": replies})
		}()
	})
	s.On("server-disconnect", func(*socketio.Event) { s.Disconnect(false) })
	s.On("close-transport", func(*socketio.Event) { s.Conn().Close("forced close") })
}

func jsDate() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func clientSuiteMain(s *socketio.Socket) {
	emit := func(event string, args ...any) { _ = s.Emit(event, args...) }
	isBytes := func(ev *socketio.Event) bool {
		var b []byte
		return len(ev.Args()) > 0 && ev.Decode(&b) == nil && b != nil && len(ev.Attachments()) > 0
	}
	// jsonWithBuffer checks {hello: "lol", message: <binary>, goodbye: "gotcha"}.
	jsonWithBuffer := func(ev *socketio.Event) bool {
		var v struct {
			Hello   string `json:"hello"`
			Message []byte `json:"message"`
			Goodbye string `json:"goodbye"`
		}
		return ev.Decode(&v) == nil && v.Hello == "lol" && v.Message != nil && v.Goodbye == "gotcha" && len(ev.Attachments()) > 0
	}

	s.On("hi", func(*socketio.Event) { emit("hi") })
	s.On("echo", func(ev *socketio.Event) {
		args, err := decodeAll(ev)
		if err != nil {
			return
		}
		var arg any
		if len(args) > 0 {
			arg = args[0]
		}
		_ = ev.Ack(arg)
	})
	s.On("ack", func(*socketio.Event) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			reply, err := s.EmitWithAck(ctx, "ack")
			if err != nil || len(reply) < 2 {
				return
			}
			var a int
			var b struct {
				Test bool `json:"test"`
			}
			if jsonUnmarshal(reply[0], &a) == nil && jsonUnmarshal(reply[1], &b) == nil && a == 5 && b.Test {
				emit("got it")
			}
		}()
	})
	s.On("getAckDate", func(ev *socketio.Event) { _ = ev.Ack(jsDate()) })
	s.On("getDate", func(*socketio.Event) { emit("takeDate", jsDate()) })
	s.On("getDateObj", func(*socketio.Event) { emit("takeDateObj", map[string]string{"date": jsDate()}) })
	s.On("getUtf8", func(*socketio.Event) {
		for _, t := range []string{"てすと", "Я Б Г Д Ж Й", "Ä ä Ü ü ß", "utf8 — string", "utf8 — string"} {
			emit("takeUtf8", t)
		}
	})
	s.On("false", func(*socketio.Event) { emit("false", false) })
	s.On("doge", func(*socketio.Event) { emit("doge", []byte("asdfasdf")) })
	s.On("buffa", func(ev *socketio.Event) {
		if isBytes(ev) {
			emit("buffack")
		}
	})
	s.On("jsonbuff", func(ev *socketio.Event) {
		if jsonWithBuffer(ev) {
			emit("jsonbuff-ack")
		}
	})
	// buffers and blobs must arrive in order
	receivedAbuff1 := false
	s.On("abuff1", func(ev *socketio.Event) { receivedAbuff1 = isBytes(ev) })
	s.On("abuff2", func(*socketio.Event) {
		if receivedAbuff1 {
			emit("abuff2-ack")
		}
	})
	s.On("blob", func(ev *socketio.Event) {
		if isBytes(ev) {
			emit("back")
		}
	})
	s.On("jsonblob", func(ev *socketio.Event) {
		if jsonWithBuffer(ev) {
			emit("jsonblob-ack")
		}
	})
	receivedBlob1, receivedBlob2 := false, false
	s.On("blob1", func(ev *socketio.Event) { receivedBlob1 = isBytes(ev) })
	s.On("blob2", func(ev *socketio.Event) {
		var v string
		receivedBlob2 = receivedBlob1 && ev.Decode(&v) == nil && v == "second"
	})
	s.On("blob3", func(ev *socketio.Event) {
		if isBytes(ev) && receivedBlob1 && receivedBlob2 {
			emit("blob3-ack")
		}
	})
	s.On("getbin", func(*socketio.Event) { emit("takebin", []byte("asdfasdf")) })
	s.On("getHandshake", func(ev *socketio.Event) { _ = ev.Ack(s.Handshake()) })
	s.On("getId", func(ev *socketio.Event) { _ = ev.Ack(s.ID()) })
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
