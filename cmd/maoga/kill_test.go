package main

// Process killed mid-write (issue 8, Faults): the real binary, built into a temp dir, runs with the
// embedded store (FerretDB, SQLite) under one DATA_DIR; users write concurrently (lobbies created,
// joined, left, readied; matchmaking; chat messages over sockets) and the process gets SIGKILL in
// the middle, several times. After each kill the stored state is checked with the shared consistency
// checker (internal/consistency) and the server must start again on the same DATA_DIR and serve.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/internal/consistency"
	"github.com/maoga/maoga/models"
)

const killSecret = "kill-test-secret-0123456789abcdef"

// killServer is one run of the binary.
type killServer struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
	exited chan error
}

// killEnv holds what survives the restarts: the binary, the data dir, the port, the users.
type killEnv struct {
	t       *testing.T
	bin     string
	dataDir string
	port    string
	base    string
	users   []*killUser
	http    *http.Client

	mu      sync.Mutex
	lobbies []string // recently created lobbies, for joins
}

type killUser struct {
	id, token string
	current   string // the lobby the user last created or joined (kept across restarts)
}

func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "maoga")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (e *killEnv) start() *killServer {
	e.t.Helper()
	s := &killServer{base: e.base, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(e.bin)
	s.cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+e.port, "DATA_DIR="+e.dataDir,
		"JWT_SECRET="+killSecret, "BCRYPT_COST=4", "LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=5s",
		"MATCH_TICK=200ms", "SOCKET_EVENT_RATE=100000", "SOCKET_EVENT_BURST=100000",
		"CHAT_MESSAGE_LIMIT=100000", "MONGODB_URI=")
	s.cmd.Stderr = &lockedWriter{w: s.stderr}
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	return s
}

// ready waits until /readyz answers 200; the process exiting first fails the test.
func (e *killEnv) ready(s *killServer, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := e.http.Get(s.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-s.exited:
			e.t.Fatalf("server exited during start-up: %v\n%s", err, s.log())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("server not ready within %v\n%s", within, s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *killServer) log() string {
	w := s.cmd.Stderr.(*lockedWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	out := s.stderr.String()
	if len(out) > 4000 {
		out = "..." + out[len(out)-4000:]
	}
	return out
}

func (s *killServer) kill(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.exited:
		t.Fatalf("the server had exited before the kill: %v\n%s", err, s.log())
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("killed server did not exit")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// call sends a JSON request; status 0 means no answer (the server is gone).
func (e *killEnv) call(method, path, token string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (e *killEnv) register(n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("k%d_%d", time.Now().UnixNano()%1e6, i)
		st, out := e.call("POST", "/api/auth/register", "", map[string]any{"username": name,
			"email": name + "@example.com", "password": "password123"})
		if st != http.StatusCreated {
			e.t.Fatalf("register: %d %v", st, out)
		}
		d := out["data"].(map[string]any)
		e.users = append(e.users, &killUser{id: d["user"].(map[string]any)["id"].(string), token: d["accessToken"].(string)})
	}
}

// checkStore opens the data dir of the stopped server and runs the consistency checker.
func (e *killEnv) checkStore(label string) *consistency.Report {
	e.t.Helper()
	ctx := context.Background()
	s, err := models.Open(ctx, models.Config{DataDir: e.dataDir, Database: "maoga",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatalf("%s: opening the data dir of the killed server: %v", label, err)
	}
	defer s.Close(ctx)
	r, err := consistency.Check(ctx, s.DB())
	if err != nil {
		e.t.Fatalf("%s: %v", label, err)
	}
	if !r.OK() {
		e.t.Fatalf("%s: %v", label, r.Err())
	}
	e.t.Logf("%s: %s", label, r.Summary())
	return r
}

// opCounts counts the writes the load got answers for, by kind.
type opCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounts) add(kind string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[kind]++
	c.mu.Unlock()
}

func (c *opCounts) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for _, v := range c.n {
		sum += v
	}
	return sum
}

func (c *opCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	for k := range c.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.n[k]))
	}
	return strings.Join(parts, " ")
}

// load runs one worker per user until stop: random lobby, matchmaking and chat writes. Answers after
// the kill are failures, which the workers ignore.
func (e *killEnv) load(stop <-chan struct{}, ops *opCounts) *sync.WaitGroup {
	known := func() string {
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.lobbies) == 0 {
			return ""
		}
		return e.lobbies[rand.IntN(len(e.lobbies))]
	}
	remember := func(id string) {
		e.mu.Lock()
		e.lobbies = append(e.lobbies, id)
		if len(e.lobbies) > 32 {
			e.lobbies = e.lobbies[1:]
		}
		e.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, u := range e.users {
		wg.Add(1)
		go func(u *killUser) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-stop; cancel() }()
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			sock, err := clienttest.Dial(dctx, e.base, clienttest.Options{Auth: map[string]any{"token": u.token}})
			dcancel()
			if err == nil {
				defer sock.Close()
			}
			current := u.current
			defer func() { u.current = current }()
			for ctx.Err() == nil {
				ok := func(st int) bool { return st >= 200 && st < 300 }
				switch p := rand.IntN(100); {
				case p < 20:
					st, out := e.call("POST", "/api/lobbies", u.token, map[string]any{"gameId": "party-trivia", "gameMode": "casual"})
					if ok(st) {
						current = out["data"].(map[string]any)["id"].(string)
						remember(current)
						ops.add("lobby.create")
					}
				case p < 40:
					if id := known(); id != "" {
						if st, _ := e.call("POST", "/api/lobbies/"+id+"/join", u.token, nil); ok(st) {
							current = id
							ops.add("lobby.join")
						}
					}
				case p < 52:
					if current != "" {
						st, _ := e.call("POST", "/api/lobbies/"+current+"/leave", u.token, nil)
						if ok(st) {
							ops.add("lobby.leave")
						}
						if st != 0 {
							current = ""
						}
					}
				case p < 64:
					if current != "" {
						if st, _ := e.call("POST", "/api/lobbies/"+current+"/ready", u.token, map[string]any{"isReady": rand.IntN(2) == 0}); ok(st) {
							ops.add("lobby.ready")
						}
					}
				case p < 76:
					st, _ := e.call("POST", "/api/matchmaking", u.token, map[string]any{"gameId": "arena-shooter",
						"gameMode": "1v1", "region": "eu", "skill": 1500})
					if ok(st) {
						ops.add("matchmaking.start")
					}
				default:
					if sock == nil || current == "" {
						continue
					}
					chatID := "lobby:" + current
					actx, acancel := context.WithTimeout(ctx, 2*time.Second)
					if _, err := sock.EmitWithAck(actx, "chat:join", map[string]any{"chatId": chatID}); err == nil {
						args, err := sock.EmitWithAck(actx, "chat:message", map[string]any{"chatId": chatID, "content": "gl hf"})
						if err == nil && len(args) == 1 && bytes.Contains(args[0], []byte(`"ok":true`)) {
							ops.add("chat.message")
						}
					}
					acancel()
				}
			}
		}(u)
	}
	return &wg
}

// SIGKILL in the middle of concurrent writes, three times, restarting on the same DATA_DIR: every time
// the stored state is consistent and the server starts and serves. Also killed during start-up.
func TestKillMidWriteAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	start := time.Now()
	e := &killEnv{t: t, bin: buildServer(t), dataDir: t.TempDir(), port: freePort(t),
		http: &http.Client{Timeout: 5 * time.Second}}
	e.base = "http://127.0.0.1:" + e.port
	t.Logf("built in %v", time.Since(start).Round(time.Millisecond))

	// Killed during start-up (embedded store start, index creation, catalogue seed) on a fresh dir.
	for i, after := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond} {
		s := e.start()
		time.Sleep(after)
		s.kill(t)
		t.Logf("start-up kill %d after %v", i+1, after)
	}
	s := e.start()
	e.ready(s, 30*time.Second)
	e.register(16)

	const cycles = 3
	var all opCounts
	tolerated := map[string]int{}
	for cycle := 1; cycle <= cycles; cycle++ {
		var ops opCounts
		stop := make(chan struct{})
		wg := e.load(stop, &ops)
		// Kill once writes are flowing, at a random point after that.
		deadline := time.Now().Add(15 * time.Second)
		for ops.total() < 30 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		s.kill(t)
		close(stop)
		wg.Wait()
		if ops.total() < 30 {
			t.Fatalf("cycle %d: only %d writes before the kill (%s)", cycle, ops.total(), ops.String())
		}
		t.Logf("cycle %d: killed after %s", cycle, ops.String())
		for k, v := range ops.n {
			for i := 0; i < v; i++ {
				all.add(k)
			}
		}
		r := e.checkStore(fmt.Sprintf("after kill %d", cycle))
		for k, v := range r.Tolerated {
			tolerated[k] += len(v)
		}

		// The server starts on the same data and serves every user.
		s = e.start()
		e.ready(s, 30*time.Second)
		for _, u := range e.users {
			if st, out := e.call("GET", "/api/users/me", u.token, nil); st != http.StatusOK {
				t.Fatalf("after restart %d: GET /api/users/me %d %v", cycle, st, out)
			}
		}
		// A lobby without its chat document (chats are created on first access) is usable: a member
		// joins its chat and talks in it.
		if cycle == cycles && len(r.LobbiesWithoutChat) > 0 {
			e.chatInLobbyWithoutChat(r.LobbiesWithoutChat)
		}
	}

	// Finally a graceful stop, and the state once more.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, s.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// The last start repaired what the last kill left (stale seats, half-done match requests: the
	// embedded store's start-up recovery) and nothing ran since.
	final := e.checkStore("after the graceful stop")
	for _, kind := range []string{consistency.StaleSeat, consistency.StaleMatchClaim} {
		if n := len(final.Tolerated[kind]); n != 0 {
			t.Errorf("%d %s left after a restart: %v\n%s", n, kind, final.Tolerated[kind], s.log())
		}
	}
	t.Logf("%d kills mid-write, %d writes answered (%s); tolerated leftovers over all kills: %v; took %v",
		cycles, all.total(), all.String(), tolerated, time.Since(start).Round(time.Millisecond))
}

// chatInLobbyWithoutChat finds a member of one of the lobbies (hex ids) and has them chat in it.
func (e *killEnv) chatInLobbyWithoutChat(lobbyIDs []string) {
	e.t.Helper()
	for _, id := range lobbyIDs {
		for _, u := range e.users {
			st, out := e.call("GET", "/api/lobbies/"+id, u.token, nil)
			if st != http.StatusOK {
				continue
			}
			if d, _ := out["data"].(map[string]any); d["status"] == "closed" {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := clienttest.Dial(ctx, e.base, clienttest.Options{Auth: map[string]any{"token": u.token}})
			if err != nil {
				e.t.Fatal(err)
			}
			defer c.Close()
			chatID := "lobby:" + id
			var reply []json.RawMessage
			for i := 0; i < 20; i++ { // the first event may beat the connection handlers
				actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
				reply, err = c.EmitWithAck(actx, "chat:join", map[string]any{"chatId": chatID})
				acancel()
				if err == nil {
					break
				}
			}
			if err != nil || !bytes.Contains(reply[0], []byte(`"ok":true`)) {
				e.t.Fatalf("chat:join of lobby %s without chat document: %v %s", id, err, reply)
			}
			reply, err = c.EmitWithAck(ctx, "chat:message", map[string]any{"chatId": chatID, "content": "still here"})
			if err != nil || !bytes.Contains(reply[0], []byte(`"ok":true`)) {
				e.t.Fatalf("chat:message in lobby %s: %v %s", id, err, reply)
			}
			e.t.Logf("lobby %s had no chat document after the kill; its member chatted in it", id)
			return
		}
	}
	e.t.Logf("no open lobby without chat document had a reachable member (%d candidates)", len(lobbyIDs))
}
