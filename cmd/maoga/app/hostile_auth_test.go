package app_test

// Authentication and authorization under attack (issue 8, Application): forged and broken JWTs at
// REST and at the socket handshake, suspended accounts losing open sockets, kicked and departed lobby
// members losing the lobby and its chat at once, and tokens/passwords never reaching the logs.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/cmd/maoga/app"
)

// badTokens are tokens for u that must be refused everywhere.
func badTokens(t *testing.T, u *testUser) map[string]string {
	t.Helper()
	now := time.Now()
	valid := jwt.MapClaims{"sub": u.ID, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(u.Access, ".")
	// The real token's header and body, re-signed with HS256 over a body that drops exp.
	return map[string]string{
		"alg none":             sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid),
		"alg none, real body":  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"alg NONE, real body":  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"NONE","typ":"JWT"}`)) + "." + parts[1] + ".",
		"HS384":                sign(t, jwt.SigningMethodHS384, []byte(secret), valid),
		"HS512":                sign(t, jwt.SigningMethodHS512, []byte(secret), valid),
		"RS256":                sign(t, jwt.SigningMethodRS256, rsaKey, valid),
		"RS256 header, HS sig": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		"wrong secret":         sign(t, jwt.SigningMethodHS256, []byte("not-the-secret-0123456789"), valid),
		"expired":              sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": u.ID, "exp": now.Add(-time.Minute).Unix()}),
		"not yet valid (nbf)":  sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": u.ID, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(30 * time.Minute).Unix()}),
		"issued in the future": sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": u.ID, "exp": now.Add(time.Hour).Unix(), "iat": now.Add(30 * time.Minute).Unix()}),
		"missing exp":          sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": u.ID, "iat": now.Unix()}),
		"missing sub":          sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}),
		"sub not an id":        sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": map[string]any{"$ne": ""}, "exp": now.Add(time.Hour).Unix()}),
		"sub injection string": sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": `{"$ne":""}`, "exp": now.Add(time.Hour).Unix()}),
		"exp as string":        sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": u.ID, "exp": "never"}),
		"signature stripped":   parts[0] + "." + parts[1] + ".",
		"tampered body":        parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+u.ID+`","exp":9999999999}`)) + "." + parts[2],
		"garbage":              "a.b.c",
		"huge":                 strings.Repeat("A", 6000),
	}
}

func TestHostileJWT(t *testing.T) {
	u := register(t)
	for name, tok := range badTokens(t, u) {
		t.Run(name, func(t *testing.T) {
			r := call(t, "GET", "/api/users/me", tok, nil)
			expect(t, r, 401, "UNAUTHORIZED")
			checkNoLeak(t, name, r.errMessage(), u.Username, u.Email)
			for _, opts := range []clienttest.Options{
				{Auth: map[string]any{"token": tok}},
				{Query: url.Values{"token": {tok}}},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := clienttest.Dial(ctx, baseURL, opts)
				cancel()
				var ce *clienttest.ConnectError
				if !errors.As(err, &ce) || ce.Message != "Authentication error: Invalid token" {
					if c != nil {
						c.Close()
					}
					t.Fatalf("handshake: %v", err)
				}
			}
		})
	}
	// The genuine token still works (the table did not break anything).
	if r := call(t, "GET", "/api/users/me", u.Access, nil); r.Status != 200 {
		t.Fatalf("genuine token: %d %s", r.Status, r.Raw)
	}
}

// A suspended (or deleted) account loses its open sockets on its next action, REST at once, and
// cannot connect again.
func TestHostileSuspendedAccountLosesAccess(t *testing.T) {
	for _, status := range []string{"suspended", "banned"} {
		t.Run(status, func(t *testing.T) {
			u, friend := register(t), register(t)
			dc := directChat(t, u, friend)
			c := lobbyDial(t, u)
			if a := lobbyAck(t, c, "chat:join", map[string]any{"chatId": dc}); a["ok"] != true {
				t.Fatalf("join: %v", a)
			}
			setAccountStatus(t, u.ID, status)
			expect(t, call(t, "GET", "/api/users/me", u.Access, nil), 403, "FORBIDDEN")
			time.Sleep(1100 * time.Millisecond) // socket.DefaultAccountRecheck
			before := chatCount(t, dc)
			socketFailure(t, c, "suspended chat:message", "chat:message", []any{map[string]any{"chatId": dc, "content": "still here?"}},
				[]string{"ACCESS_DENIED"})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.WaitDisconnect(ctx); ctx.Err() != nil {
				t.Fatalf("socket of a %s account still connected: %v", status, err)
			}
			if n := chatCount(t, dc); n != before {
				t.Fatalf("message written by a %s account", status)
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel2()
			_, err := clienttest.Dial(ctx2, baseURL, clienttest.Options{Auth: map[string]any{"token": u.Access}})
			var ce *clienttest.ConnectError
			if !errors.As(err, &ce) || ce.Message != "Account is "+status {
				t.Fatalf("reconnect: %v", err)
			}
		})
	}
	t.Run("deleted", func(t *testing.T) {
		u := register(t)
		c := lobbyDial(t, u)
		if _, err := srv.Store.Collection("users").DeleteOne(context.Background(), bson.M{"_id": mustID(u.ID)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		socketFailure(t, c, "deleted user:status", "user:status", []any{map[string]any{"status": "away"}}, []string{"ACCESS_DENIED"})
		expect(t, call(t, "GET", "/api/users/me", u.Access, nil), 401, "UNAUTHORIZED")
	})
}

// Kicked and departed members lose the lobby and its chat at once (REST and socket).
func TestHostileKickedAndLeftLoseAccess(t *testing.T) {
	host, kicked, leaver := register(t), register(t), register(t)
	id := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, kicked, id)
	joinLobby(t, leaver, id)
	chatID := "lobby:" + id
	hs := lobbyDial(t, host)
	socks := map[*testUser]*clienttest.Client{}
	for _, u := range []*testUser{kicked, leaver} {
		c := lobbyDial(t, u)
		lobbyAck(t, c, "lobby:join", map[string]any{"lobbyId": id})
		if a := lobbyAck(t, c, "chat:join", map[string]any{"chatId": chatID}); a["ok"] != true {
			t.Fatalf("chat:join: %v", a)
		}
		socks[u] = c
	}
	if a := lobbyAck(t, hs, "lobby:kick", map[string]any{"lobbyId": id, "userId": kicked.ID}); a["ok"] != true {
		t.Fatalf("kick: %v", a)
	}
	if r := call(t, "POST", "/api/lobbies/"+id+"/leave", leaver.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Raw)
	}
	waitJSON(t, socks[kicked], "lobby:kicked", 5*time.Second)
	for _, u := range []*testUser{kicked, leaver} {
		c := socks[u]
		before := chatCount(t, chatID)
		// The socket of a leaver (REST) is still in the chat room: the service refuses the message.
		socketFailure(t, c, "chat:message after losing membership", "chat:message",
			[]any{map[string]any{"chatId": chatID, "content": "ghost"}}, []string{"NOT_IN_CHAT", "ACCESS_DENIED"})
		socketFailure(t, c, "chat:join after losing membership", "chat:join", []any{map[string]any{"chatId": chatID}}, []string{"ACCESS_DENIED"})
		socketFailure(t, c, "lobby:join after losing membership", "lobby:join", []any{map[string]any{"lobbyId": id}}, []string{"ACCESS_DENIED"})
		socketFailure(t, c, "lobby:ready after losing membership", "lobby:ready", []any{map[string]any{"lobbyId": id, "isReady": true}},
			[]string{"ACCESS_DENIED", "LOBBY_ERROR", "READY_ERROR"})
		if n := chatCount(t, chatID); n != before {
			t.Fatalf("a former member wrote to the lobby chat")
		}
		expect(t, call(t, "GET", "/api/lobbies/"+id, u.Access, nil), 403, "ACCESS_DENIED")
		r := call(t, "GET", "/api/chats/"+chatID+"/messages", u.Access, nil)
		if r.Status != 403 {
			t.Fatalf("former member reads the lobby chat: %d %s", r.Status, r.Raw)
		}
	}
}

// syncBuffer is a log sink for a second server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tokens (query-token option, bearer header, refresh tokens) and passwords never reach the log, even
// at debug level with every refusal path taken.
func TestHostileSecretsNotLogged(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	a, err := app.New(context.Background(), testConfig(dir), log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- a.Start(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
		<-done
	}()
	post := func(path, token, body string) *http.Response {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	const password = "Sup3r-Secret-Passw0rd"
	var access, refresh string
	{
		req, _ := http.NewRequest("POST", base+"/api/auth/register", strings.NewReader(`{"username":"logcheck","email":"logcheck@example.com","password":"`+password+`"}`))
		req.Header.Set("Content-Type", "application/json")
		r := send(t, req)
		if r.Status != 201 {
			t.Fatalf("register: %d %s", r.Status, r.Raw)
		}
		access, refresh = r.data()["accessToken"].(string), r.data()["refreshToken"].(string)
	}
	post("/api/auth/login", "", `{"login":"logcheck","password":"wrong-`+password+`"}`)
	post("/api/auth/login", "", `{"login":"logcheck","password":"`+password+`"}`)
	post("/api/auth/refresh", "", `{"refreshToken":"`+refresh+`"}`)
	post("/api/auth/refresh", "", `{"refreshToken":"`+refresh+`"}`) // reuse: logged as a warning
	for _, p := range []string{"/api/users/me?token=" + access, "/socket.io/?EIO=3&transport=polling&token=" + access,
		"/socket.io/?EIO=4&transport=bogus&token=" + access, "/socket.io/?EIO=4&transport=polling&sid=nope&token=" + access} {
		res, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	req, _ := http.NewRequest("GET", base+"/api/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+access+"x")
	send(t, req)
	// A real socket with the query-token option, one refused with a forged token, both transports.
	for _, tr := range []string{"websocket", "polling"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := clienttest.Dial(ctx, base, clienttest.Options{Transport: tr, Query: url.Values{"token": {access}}})
		cancel()
		if err != nil {
			t.Fatalf("%s dial: %v", tr, err)
		}
		c.Close()
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = clienttest.Dial(ctx, base, clienttest.Options{Transport: tr, Query: url.Values{"token": {access + "x"}}})
		cancel()
	}
	time.Sleep(200 * time.Millisecond)
	out := logs.String()
	if len(out) == 0 {
		t.Fatal("no logs captured")
	}
	sig := access[strings.LastIndex(access, ".")+1:]
	for what, secret := range map[string]string{"password": password, "access token signature": sig,
		"refresh token": refresh, "bcrypt hash": "$2a$"} {
		if strings.Contains(out, secret) {
			i := strings.Index(out, secret)
			lo := max(0, i-200)
			t.Errorf("%s in the log: …%s…", what, out[lo:min(len(out), i+len(secret)+20)])
		}
	}
	if os.Getenv("MAOGA_TEST_LOG") != "" {
		t.Log(out)
	}
}
