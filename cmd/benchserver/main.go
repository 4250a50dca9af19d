// Command benchserver is the Go side of the benchmarks (see BENCHMARKS.md and bench/run.sh): a
// Socket.IO server built on server/socketio that implements the scenarios of cmd/loadtest, or, with
// -mode raw, a bare WebSocket broadcast server on the same WebSocket library (gobwas/ws) as the
// baseline "physical limit" of a room fan-out.
//
//	benchserver -addr 127.0.0.1:0 -addr-file /tmp/addr [-redis 127.0.0.1:6379] [-mode socketio|raw] [-read-mode epoll|goroutine] [-pprof]
//
// Scenario protocol (the same in bench/node/server.js):
//   - a client whose handshake query has room=R is put in room R on connection; the ack of a "sync"
//     event tells the client that this has happened;
//   - "echo" with an ack: the ack carries the event's arguments back;
//   - "fanout" [room, payload]: the server emits "msg" payload to every socket in room;
//   - "chat" [payload]: the server emits "msg" payload to the sender's room, sender excluded.
//
// Raw modes: GET /raw?room=R joins room R; a connection opened with /raw?target=R broadcasts every text
// frame it sends, byte for byte, to the members of R; the frame is compiled once. -mode raw queues it on
// each receiver and an on-demand writer per receiver drains its queue with one writev (the same
// write design as server/engineio, without any protocol: the physical limit of our design);
// -mode raw-sync writes it to each receiver in turn from the sender's goroutine (one syscall per
// receiver and message, the naive broadcast).
//
// Both modes serve GET /debug/stats (JSON: rss, cpu_ms, goroutines, heap_inuse, conns) and GET /debug/gc
// (runs the GC and returns the stats afterwards), which cmd/loadtest reads.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/redis/go-redis/v9"

	redisadapter "github.com/maoga/maoga/adapter/redis"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/socketio"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	addrFile := flag.String("addr-file", "", "write the bound address to this file once listening")
	mode := flag.String("mode", "socketio", "socketio | raw | raw-sync")
	redisAddr := flag.String("redis", "", "Redis address for the cluster adapter (empty: in memory)")
	withPprof := flag.Bool("pprof", false, "serve /debug/pprof/")
	readMode := flag.String("read-mode", "", "websocket read mode of the socketio server: epoll | goroutine (default: epoll on Linux)")
	memRate := flag.Int("memprofilerate", 0, "runtime.MemProfileRate (1: every allocation in the heap profile; 0: the default)")
	flag.Parse()
	if *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}

	var rm engineio.ReadMode
	switch *readMode {
	case "":
	case "epoll":
		rm = engineio.ReadModeEpoll
	case "goroutine":
		rm = engineio.ReadModeGoroutine
	default:
		slog.Error("benchserver: unknown -read-mode (epoll | goroutine)", "read-mode", *readMode)
		os.Exit(2)
	}
	if err := run(*addr, *addrFile, *mode, *redisAddr, rm, *withPprof); err != nil {
		slog.Error("benchserver", "err", err)
		os.Exit(1)
	}
}

func run(addr, addrFile, mode, redisAddr string, readMode engineio.ReadMode, withPprof bool) error {
	mux := http.NewServeMux()
	var conns func() int
	var shutdown func(ctx context.Context) error
	switch mode {
	case "socketio":
		io, count, closeFn, err := newSocketIO(redisAddr, readMode)
		if err != nil {
			return err
		}
		mux.Handle("/socket.io/", io)
		conns, shutdown = count, closeFn
	case "raw", "raw-sync":
		rs := newRawServer(mode == "raw")
		mux.Handle("/raw", rs)
		conns = rs.count
		shutdown = func(context.Context) error { return nil }
	default:
		return fmt.Errorf("unknown -mode %q (socketio | raw | raw-sync)", mode)
	}
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, r *http.Request) { writeStats(w, conns()) })
	mux.HandleFunc("/debug/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		writeStats(w, conns())
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return fmt.Errorf("write addr file: %w", err)
		}
	}
	slog.Info("benchserver listening", "addr", ln.Addr().String(), "mode", mode, "redis", redisAddr, "readMode", readMode.String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = shutdown(ctx)
	return srv.Shutdown(ctx)
}

// newSocketIO builds the Socket.IO server of the scenarios.
func newSocketIO(redisAddr string, readMode engineio.ReadMode) (http.Handler, func() int, func(context.Context) error, error) {
	// Node's socket.io has no per-socket event rate limit; ours (100 events/s by default) would drop
	// the fan-out sender's and the echo clients' events, so it is off here, as in a trusted setup.
	opts := socketio.Options{Limits: socketio.Limits{EventsPerSecond: -1}, Engine: engineio.Options{ReadMode: readMode}}
	var rdb *redis.Client
	if redisAddr != "" {
		rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			return nil, nil, nil, fmt.Errorf("redis %s: %w", redisAddr, err)
		}
		opts.Adapter = redisadapter.NewCluster(rdb, redisadapter.Options{}).Factory()
	}
	io := socketio.NewServer(opts)
	io.OnConnection(func(s *socketio.Socket) {
		room := s.Handshake().Query.Get("room")
		if room != "" {
			s.Join(room)
		}
		s.On("sync", func(ev *socketio.Event) { _ = ev.Ack() }) // the room join above is done
		s.On("echo", func(ev *socketio.Event) {
			args := ev.Args()
			out := make([]any, len(args))
			for i, a := range args {
				out[i] = a
			}
			_ = ev.Ack(out...)
		})
		s.On("fanout", func(ev *socketio.Event) {
			args := ev.Args()
			var target string
			if len(args) < 2 || json.Unmarshal(args[0], &target) != nil {
				return
			}
			if err := io.To(target).Emit("msg", args[1]); err != nil {
				slog.Warn("fanout emit", "err", err)
			}
		})
		s.On("chat", func(ev *socketio.Event) {
			args := ev.Args()
			if len(args) < 1 || room == "" {
				return
			}
			if err := s.To(room).Emit("msg", args[0]); err != nil {
				slog.Warn("chat emit", "err", err)
			}
		})
	})
	closeFn := func(ctx context.Context) error {
		err := io.Close(ctx)
		if rdb != nil {
			_ = rdb.Close()
		}
		return err
	}
	return io, io.Engine().Count, closeFn, nil
}

type stats struct {
	RSS        int64 `json:"rss"`
	CPUms      int64 `json:"cpu_ms"`
	Goroutines int   `json:"goroutines"`
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"` // goroutine stacks: with HeapInuse, where an idle connection's memory goes
	Conns      int   `json:"conns"`
}

func writeStats(w http.ResponseWriter, conns int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	st := stats{
		RSS:        selfRSS(),
		CPUms:      cpu.Milliseconds(),
		Goroutines: runtime.NumGoroutine(),
		HeapInuse:  int64(ms.HeapInuse),
		StackInuse: int64(ms.StackInuse),
		Conns:      conns,
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// selfRSS reads VmRSS from /proc/self/status (bytes; 0 when unavailable).
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// rawServer is the baseline: rooms of bare WebSocket connections and a byte-for-byte broadcast.
type rawServer struct {
	batch bool
	mu    sync.RWMutex
	rooms map[string]map[*rawConn]struct{}
	n     atomic.Int64
}

type rawConn struct {
	mu      sync.Mutex
	conn    net.Conn
	pending [][]byte // batch mode: frames waiting for the writer
	writing bool     // batch mode: a writer goroutine is draining pending
}

func newRawServer(batch bool) *rawServer {
	return &rawServer{batch: batch, rooms: map[string]map[*rawConn]struct{}{}}
}

func (s *rawServer) count() int { return int(s.n.Load()) }

func (s *rawServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	room, target := r.URL.Query().Get("room"), r.URL.Query().Get("target")
	c := &rawConn{conn: conn}
	s.n.Add(1)
	if room != "" {
		s.mu.Lock()
		m := s.rooms[room]
		if m == nil {
			m = map[*rawConn]struct{}{}
			s.rooms[room] = m
		}
		m[c] = struct{}{}
		s.mu.Unlock()
	}
	go s.read(c, room, target)
}

func (s *rawServer) read(c *rawConn, room, target string) {
	defer func() {
		if room != "" {
			s.mu.Lock()
			delete(s.rooms[room], c)
			s.mu.Unlock()
		}
		s.n.Add(-1)
		c.conn.Close()
	}()
	for {
		msg, op, err := wsutil.ReadClientData(c.conn)
		if err != nil {
			return
		}
		if op != ws.OpText || target == "" {
			continue
		}
		frame, err := ws.CompileFrame(ws.NewTextFrame(msg))
		if err != nil {
			return
		}
		s.mu.RLock()
		for m := range s.rooms[target] {
			if s.batch {
				m.enqueue(frame)
				continue
			}
			m.mu.Lock()
			_ = m.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = m.conn.Write(frame)
			m.mu.Unlock()
		}
		s.mu.RUnlock()
	}
}

// enqueue queues a shared frame and starts the writer if none is running.
func (c *rawConn) enqueue(frame []byte) {
	c.mu.Lock()
	c.pending = append(c.pending, frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.flush()
	}
}

// flush writes everything queued with one writev per batch and exits when the queue is empty.
func (c *rawConn) flush() {
	var batch [][]byte
	for {
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch, c.pending = c.pending, batch[:0]
		c.mu.Unlock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		bufs := net.Buffers(batch)
		if _, err := bufs.WriteTo(c.conn); err != nil {
			c.conn.Close()
		}
		clear(batch)
	}
}
