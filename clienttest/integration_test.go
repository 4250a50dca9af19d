package clienttest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/socketio"
)

// newServer starts a real socketio server on a free port; setup configures it.
func newServer(t *testing.T, setup func(io *socketio.Server)) string {
	t.Helper()
	sio := socketio.NewServer(socketio.Options{
		Engine: engineio.Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	setup(sio)
	srv := httptest.NewServer(sio)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = sio.Close(ctx)
		srv.Close()
	})
	return srv.URL
}

// dialReady dials and waits for the "ready" event the test servers emit at
// the end of their connection handler, so the client's first event cannot
// overtake the server's handler registration (see
// TestIntegrationEventRightAfterConnect for that race on its own).
func dialReady(ctx context.Context, t *testing.T, url string, opts clienttest.Options) *clienttest.Client {
	t.Helper()
	c, err := clienttest.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	return c
}

// forTransports runs fn over WebSocket, over HTTP long-polling, and over
// polling upgraded to WebSocket.
func forTransports(t *testing.T, fn func(t *testing.T, transport string)) {
	for _, tr := range []string{"websocket", "polling", "upgrade"} {
		t.Run(tr, func(t *testing.T) { fn(t, tr) })
	}
}

// tr maps the forTransports names onto Options.Transport ("upgrade" is
// polling with Options.Upgrade).
func tr(transport string) string {
	if transport == "upgrade" {
		return "polling"
	}
	return transport
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationAuthAndMiddleware(t *testing.T) { forTransports(t, testAuthAndMiddleware) }

func testAuthAndMiddleware(t *testing.T, transport string) {
	url := newServer(t, func(io *socketio.Server) {
		nsp := io.Of("/")
		nsp.Use(func(s *socketio.Socket) error {
			var auth struct{ Token string }
			_ = json.Unmarshal(s.Handshake().Auth, &auth)
			if auth.Token != "good" {
				return &socketio.ConnectError{Message: "unauthorized", Data: map[string]any{"code": 401}}
			}
			s.SetData(auth.Token)
			return nil
		})
		nsp.OnConnection(func(s *socketio.Socket) {
			_ = s.Emit("welcome", s.Data(), s.Handshake().Query.Get("room"))
		})
	})
	ctx := testCtx(t)

	_, err := clienttest.Dial(ctx, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade", Auth: map[string]string{"token": "bad"}})
	var ce *clienttest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "unauthorized" || string(ce.Data) != `{"code":401}` {
		t.Fatalf("bad token: %v", err)
	}
	_, err = clienttest.Dial(ctx, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	if !errors.As(err, &ce) {
		t.Fatalf("no auth: %v", err)
	}

	c, err := clienttest.Dial(ctx, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade",
		Auth:  map[string]string{"token": "good"},
		Query: map[string][]string{"room": {"r7"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID() == "" || c.ID() == c.EngineID() {
		t.Fatalf("socket id %q engine id %q", c.ID(), c.EngineID())
	}
	if want := map[string]string{"upgrade": "websocket"}[transport]; want != "" && c.Transport() != want {
		t.Fatalf("transport %q after upgrade", c.Transport())
	} else if want == "" && c.Transport() != transport {
		t.Fatalf("transport %q, want %q", c.Transport(), transport)
	}
	args, err := c.Wait(ctx, "welcome")
	if err != nil || len(args) != 2 || string(args[0]) != `"good"` || string(args[1]) != `"r7"` {
		t.Fatalf("welcome %s %v", args, err)
	}
}

func TestIntegrationEmitAndAckBothWays(t *testing.T) { forTransports(t, testEmitAndAckBothWays) }

func testEmitAndAckBothWays(t *testing.T, transport string) {
	type item struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	serverGot := make(chan string, 1)
	url := newServer(t, func(io *socketio.Server) {
		io.Of("/").OnConnection(func(s *socketio.Socket) {
			s.On("sum", func(ev *socketio.Event) {
				var a, b int
				if err := ev.Decode(&a, &b); err != nil {
					_ = ev.Ack(err.Error())
					return
				}
				_ = ev.Ack(a+b, item{"total", a + b})
			})
			s.On("ask-me", func(ev *socketio.Event) {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					reply, err := s.EmitWithAck(ctx, "question", "name?")
					if err != nil {
						serverGot <- "error: " + err.Error()
						return
					}
					serverGot <- string(reply[0])
				}()
			})
			_ = s.Emit("ready")
		})
	})
	ctx := testCtx(t)
	c := dialReady(ctx, t, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	defer c.Close()

	reply, err := c.EmitWithAck(ctx, "sum", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	var total int
	var it item
	if len(reply) != 2 || json.Unmarshal(reply[0], &total) != nil || json.Unmarshal(reply[1], &it) != nil ||
		total != 5 || it != (item{"total", 5}) {
		t.Fatalf("reply %s", reply)
	}
	// Many acks in flight at once are matched by id.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := c.EmitWithAck(ctx, "sum", i, 100)
			if err != nil || string(r[0]) != jsonInt(i+100) {
				t.Errorf("ack %d: %s %v", i, r, err)
			}
		}(i)
	}
	wg.Wait()

	c.SetAckHandler(func(event string, args []json.RawMessage) []any {
		return []any{"gopher:" + event}
	})
	if err := c.Emit("ask-me"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-serverGot:
		if got != `"gopher:question"` {
			t.Fatal(got)
		}
	case <-ctx.Done():
		t.Fatal("server got no ack")
	}
	if _, err := c.Wait(ctx, "question"); err != nil {
		t.Fatal("the acked event is queued as well:", err)
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestIntegrationBinaryBothWays(t *testing.T) { forTransports(t, testBinaryBothWays) }

func testBinaryBothWays(t *testing.T, transport string) {
	url := newServer(t, func(io *socketio.Server) {
		io.Of("/").OnConnection(func(s *socketio.Socket) {
			s.On("upload", func(ev *socketio.Event) {
				var file struct {
					Name string `json:"name"`
					Data []byte `json:"data"`
				}
				var raw []byte
				if err := ev.Decode(&file, &raw); err != nil {
					_ = ev.Ack("decode: " + err.Error())
					return
				}
				rev := append([]byte(nil), file.Data...)
				for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
					rev[i], rev[j] = rev[j], rev[i]
				}
				_ = s.Emit("download", map[string]any{"name": file.Name, "data": rev}, raw)
				_ = ev.Ack(len(file.Data), raw)
			})
			_ = s.Emit("ready")
		})
	})
	ctx := testCtx(t)
	c := dialReady(ctx, t, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	defer c.Close()
	big := bytes.Repeat([]byte{0, 1, 2, 255}, 50_000)
	reply, err := c.EmitWithAck(ctx, "upload", map[string]any{"name": "f.bin", "data": []byte{1, 2, 3}}, big)
	if err != nil {
		t.Fatal(err)
	}
	var echoed []byte
	if string(reply[0]) != "3" || json.Unmarshal(reply[1], &echoed) != nil || !bytes.Equal(echoed, big) {
		t.Fatalf("ack %.80s", reply)
	}
	ev, err := c.WaitEvent(ctx, "download")
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Attachments) != 2 || !bytes.Equal(ev.Attachments[0], []byte{3, 2, 1}) {
		t.Fatalf("download travelled without binary attachments: %s", ev.Data)
	}
	var file struct {
		Name string
		Data []byte
	}
	if err := json.Unmarshal(ev.Args[0], &file); err != nil || file.Name != "f.bin" || !bytes.Equal(file.Data, []byte{3, 2, 1}) {
		t.Fatalf("%+v %v", file, err)
	}
}

func TestIntegrationRoomsBroadcast(t *testing.T) { forTransports(t, testRoomsBroadcast) }

func testRoomsBroadcast(t *testing.T, transport string) {
	url := newServer(t, func(io *socketio.Server) {
		io.Of("/chat").OnConnection(func(s *socketio.Socket) {
			s.On("join", func(ev *socketio.Event) {
				var room string
				_ = ev.Decode(&room)
				s.Join(room)
				_ = ev.Ack()
			})
			s.On("say", func(ev *socketio.Event) {
				var room, text string
				_ = ev.Decode(&room, &text)
				_ = s.To(room).Emit("said", s.ID(), text)
			})
			_ = s.Emit("ready")
		})
	})
	ctx := testCtx(t)
	clients, err := clienttest.DialMany(ctx, 6, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade", Namespace: "/chat"})
	if err != nil {
		t.Fatal(err)
	}
	defer clienttest.CloseAll(clients)
	ids := map[string]bool{}
	for _, c := range clients {
		ids[c.ID()] = true
		if _, err := c.Wait(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) != 6 {
		t.Fatalf("ids not unique: %v", ids)
	}
	red, blue := clients[:4], clients[4:]
	for _, c := range red {
		if _, err := c.EmitWithAck(ctx, "join", "red"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range blue {
		if _, err := c.EmitWithAck(ctx, "join", "blue"); err != nil {
			t.Fatal(err)
		}
	}
	sender := red[0]
	if err := sender.Emit("say", "red", "hello red"); err != nil {
		t.Fatal(err)
	}
	for _, c := range red[1:] {
		args, err := c.Wait(ctx, "said")
		if err != nil || string(args[0]) != `"`+sender.ID()+`"` || string(args[1]) != `"hello red"` {
			t.Fatalf("member: %s %v", args, err)
		}
	}
	// A second broadcast to blue proves ordering: once blue got it, any red
	// message to blue would have arrived before (one connection per client,
	// the server writes in order).
	if err := sender.Emit("say", "blue", "hello blue"); err != nil {
		t.Fatal(err)
	}
	for _, c := range blue {
		args, err := c.Wait(ctx, "said")
		if err != nil || string(args[1]) != `"hello blue"` {
			t.Fatalf("blue: %s %v", args, err)
		}
	}
	if n := sender.Pending("said"); n != 0 {
		t.Fatalf("sender received its own broadcast (%d)", n)
	}
	for _, c := range red[1:] {
		if n := c.Pending("said"); n != 0 {
			t.Fatalf("red member got the blue message (%d)", n)
		}
	}
}

func TestIntegrationDisconnects(t *testing.T) { forTransports(t, testDisconnects) }

func testDisconnects(t *testing.T, transport string) {
	reasons := make(chan string, 4)
	url := newServer(t, func(io *socketio.Server) {
		io.Of("/").OnConnection(func(s *socketio.Socket) {
			s.OnDisconnect(func(reason string) { reasons <- reason })
			s.On("kick", func(ev *socketio.Event) { s.Disconnect(false) })
			_ = s.Emit("ready")
		})
	})
	ctx := testCtx(t)

	c := dialReady(ctx, t, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	_ = c.Emit("kick")
	if reason, _ := c.WaitDisconnect(ctx); reason != "io server disconnect" {
		t.Fatalf("kicked: %q", reason)
	}
	if r := <-reasons; r != "server namespace disconnect" {
		t.Fatalf("server side: %q", r)
	}

	c = dialReady(ctx, t, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	c.Close()
	if r := <-reasons; r != "client namespace disconnect" {
		t.Fatalf("client close: server saw %q", r)
	}

	c = dialReady(ctx, t, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	c.CloseTransport()
	// Node names a dropped WebSocket "transport close" and an aborted
	// long-poll "transport error"; when no poll was pending at the drop the
	// server only notices by the heartbeat: "ping timeout".
	want := map[string]bool{"transport close": transport != "polling",
		"transport error": transport == "polling", "ping timeout": transport == "polling"}
	if r := <-reasons; !want[r] {
		t.Fatalf("transport drop: server saw %q", r)
	}

	// A malformed packet makes the server close the connection.
	c = dialReady(ctx, t, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	defer c.Close()
	_ = c.WriteEngineText(`42{"not":"an array"}`)
	if _, err := c.WaitDisconnect(ctx); err != nil && !errors.Is(err, io.EOF) {
		t.Logf("client saw %v", err)
	}
	if r := <-reasons; r != "parse error" {
		t.Fatalf("parse error: server saw %q", r)
	}
}

func TestIntegrationHeartbeatKeepsConnection(t *testing.T) {
	forTransports(t, testHeartbeatKeepsConnection)
}

func testHeartbeatKeepsConnection(t *testing.T, transport string) {
	url := newServer(t, func(io *socketio.Server) {})
	ctx := testCtx(t)
	c, err := clienttest.Dial(ctx, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Several ping intervals (300 ms + 200 ms timeout) pass: the client answers pings.
	select {
	case <-c.Done():
		r, err := c.WaitDisconnect(ctx)
		t.Fatalf("disconnected: %s %v", r, err)
	case <-time.After(1500 * time.Millisecond):
	}
}

func TestIntegrationNamespacesSeparate(t *testing.T) { forTransports(t, testNamespacesSeparate) }

func testNamespacesSeparate(t *testing.T, transport string) {
	url := newServer(t, func(io *socketio.Server) {
		for _, name := range []string{"/", "/admin"} {
			name := name
			io.Of(name).OnConnection(func(s *socketio.Socket) { _ = s.Emit("where", name) })
		}
	})
	ctx := testCtx(t)
	var got []string
	for _, nsp := range []string{"/", "/admin"} {
		c, err := clienttest.Dial(ctx, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade", Namespace: nsp})
		if err != nil {
			t.Fatal(err)
		}
		args, err := c.Wait(ctx, "where")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(args[0]))
		c.Close()
	}
	sort.Strings(got)
	if got[0] != `"/"` || got[1] != `"/admin"` {
		t.Fatal(got)
	}
	_, err := clienttest.Dial(ctx, url, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade", Namespace: "/nope"})
	var ce *clienttest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "Invalid namespace" {
		t.Fatalf("unknown namespace: %v", err)
	}
}

func TestIntegrationConnectionStateRecovery(t *testing.T) {
	forTransports(t, testConnectionStateRecovery)
}

func testConnectionStateRecovery(t *testing.T, transport string) {
	sio := socketio.NewServer(socketio.Options{
		Engine:                  engineio.Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond},
		ConnectionStateRecovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: 10 * time.Second},
		Logger:                  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	gone := make(chan string, 1)
	sio.Of("/").OnConnection(func(s *socketio.Socket) {
		if !s.Recovered() {
			s.Join("news")
		}
		s.OnDisconnect(func(reason string) { gone <- reason })
		_ = s.Emit("ready", s.Recovered())
	})
	srv := httptest.NewServer(sio)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = sio.Close(ctx)
	}()
	ctx := testCtx(t)

	c := dialReady(ctx, t, srv.URL, clienttest.Options{Transport: tr(transport), Upgrade: transport == "upgrade"})
	if c.PID() == "" {
		t.Fatal("no pid with recovery on")
	}
	if err := sio.To("news").Emit("headline", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, "headline"); err != nil {
		t.Fatal(err)
	}
	if c.Offset() == "" {
		t.Fatal("no offset after an event")
	}
	c.CloseTransport()
	<-gone // the server noticed; the session is kept
	if err := sio.To("news").Emit("headline", 2); err != nil {
		t.Fatal(err)
	}

	c2, err := c.Reconnect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if !c2.Recovered() || c2.ID() != c.ID() {
		t.Fatalf("recovered %v, id %q → %q", c2.Recovered(), c.ID(), c2.ID())
	}
	args, err := c2.Wait(ctx, "headline")
	if err != nil || string(args[0]) != "2" {
		t.Fatalf("missed event: %s %v", args, err)
	}
	if ready, err := c2.Wait(ctx, "ready"); err != nil || string(ready[0]) != "true" {
		t.Fatalf("ready %s %v", ready, err)
	}
	// Rooms came back with the session.
	if err := sio.To("news").Emit("headline", 3); err != nil {
		t.Fatal(err)
	}
	if args, err := c2.Wait(ctx, "headline"); err != nil || string(args[0]) != "3" {
		t.Fatalf("after recovery: %s %v", args, err)
	}
}
