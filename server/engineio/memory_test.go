package engineio

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestIdleWebSocketMemory measures the server-side memory of idle websocket
// sessions (clients run in a child process so they are not counted). It is a
// measurement, not a unit test: run it with
//
//	ENGINEIO_MEMTEST=2000 go test -run TestIdleWebSocketMemory -v ./server/engineio
//
// and it fails if a session costs more than 7 KB (the benchmark target).
func TestIdleWebSocketMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ENGINEIO_MEMTEST"))
	if n <= 0 {
		t.Skip("set ENGINEIO_MEMTEST=<clients> to measure")
	}
	mode := ReadModeDefault
	if os.Getenv("ENGINEIO_MEMTEST_MODE") == "goroutine" {
		mode = ReadModeGoroutine
	}
	per, _ := measureIdleSessions(t, n, mode)
	if per > 7*1024 {
		t.Fatalf("%.0f bytes per idle session, target ≤ 7 KB", per)
	}
}

// TestIdleSessionMemoryEpoll runs by default: 1,000 idle websocket sessions
// read by epoll must cost well under the goroutine reader's ~3.6 KB each
// (measured ~1.2 KB: heap only, no goroutine). The bound is generous for
// noise (race detector, a busy machine), not a target.
func TestIdleSessionMemoryEpoll(t *testing.T) {
	if !epollSupported {
		t.Skip("no epoll")
	}
	if testing.Short() {
		t.Skip("short")
	}
	per, goroutines := measureIdleSessions(t, 1000, ReadModeEpoll)
	if per > 2.5*1024 {
		t.Errorf("%.0f bytes per idle session with the epoll reader, bound 2.5 KB", per)
	}
	if goroutines > 0.05 {
		t.Errorf("%.2f goroutines per idle session with the epoll reader", goroutines)
	}
}

// measureIdleSessions opens n idle websocket sessions from a child process
// and returns the server's heap+stack bytes and goroutines per session.
func measureIdleSessions(t *testing.T, n int, mode ReadMode) (per, goroutines float64) {
	if os.Getenv("ENGINEIO_MEMTEST_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	srv := NewServer(Options{PingInterval: time.Hour, PingTimeout: time.Minute, ReadMode: mode})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()

	before := heapAndStacks()
	g0 := runtime.NumGoroutine()

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMemoryClientProcess$")
	cmd.Env = append(os.Environ(), "ENGINEIO_MEMTEST_CLIENT="+ln.Addr().String(), "ENGINEIO_MEMTEST_N="+strconv.Itoa(n))
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
	}
	time.Sleep(500 * time.Millisecond)
	if srv.Count() != n {
		t.Fatalf("%d sessions open, want %d", srv.Count(), n)
	}
	after := heapAndStacks()
	if path := os.Getenv("ENGINEIO_MEMTEST_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	per = float64(int64(after)-int64(before)) / float64(n)
	goroutines = float64(runtime.NumGoroutine()-g0) / float64(n)
	t.Logf("read mode %v, %d idle websocket sessions: %.0f bytes each (heap+stacks), %.2f goroutines each", srv.ReadMode(), n, per, goroutines)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Close(ctx)
	return per, goroutines
}

func heapAndStacks() uint64 {
	var m runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	if os.Getenv("ENGINEIO_MEMTEST_VERBOSE") != "" {
		fmt.Printf("heap %d stacks %d\n", m.HeapAlloc, m.StackInuse)
	}
	return m.HeapAlloc + m.StackInuse
}

// TestIdleMemoryClientProcess is the child process of TestIdleWebSocketMemory.
func TestIdleMemoryClientProcess(t *testing.T) {
	addr := os.Getenv("ENGINEIO_MEMTEST_CLIENT")
	if addr == "" {
		t.Skip("helper process")
	}
	n, _ := strconv.Atoi(os.Getenv("ENGINEIO_MEMTEST_N"))
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		conn, br, _, err := ws.Dial(context.Background(), "ws://"+addr+"/engine.io/?EIO=4&transport=websocket")
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		var r = bufio.NewReader(conn)
		if br != nil {
			r = br
		}
		if _, err := ws.ReadFrame(r); err != nil { // the open packet
			fmt.Fprintln(os.Stderr, "read:", err)
			os.Exit(1)
		}
		conns = append(conns, conn)
	}
	fmt.Println("ready")
	var b [1]byte
	_, _ = os.Stdin.Read(b[:])
	for _, c := range conns {
		c.Close()
	}
}
