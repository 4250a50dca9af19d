package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is one cmd/maoga process with the embedded store in its own data dir.
type Server struct {
	Base    string // http://127.0.0.1:port
	DataDir string
	Env     []string // the settings it was started with (KEY=VALUE), for the report

	cmd    *exec.Cmd
	log    *logFile
	exited chan struct{}
	err    error // Wait's answer, set before exited is closed
}

// ServerEnv are the settings the soak runs the server with, on top of a clean environment (PATH,
// HOME, TMPDIR kept). Everything else keeps its production default. The changes, and why:
//
//   - BCRYPT_COST=4: registering thousands of users at cost 10 takes minutes of CPU on two cores;
//     the soak is about what happens after login.
//   - JWT_TTL=3h: access tokens outlive the run (a socket is disconnected when its token expires).
//   - LIMIT_CONNECTIONS_PER_IP=0, LIMIT_HANDSHAKES_PER_SECOND=0: every client comes from 127.0.0.1
//     (loopback is not limited anyway; written out so a non-loopback run is not throttled either).
//   - RECOVERY_MAX_DISCONNECTION=5s: sessions of dropped transports are kept this long for
//     connection state recovery; the soak waits past it before reading the after-load baseline, so
//     what is kept for recovery is gone (default 2m would only make the settle wait longer).
//   - DEBUG_ENDPOINTS=true: POST /debug/gc before each resource reading (heap after a full GC) and the
//     goroutine profile when goroutines do not come back.
//   - LOG_LEVEL=warn: the log keeps warnings and errors only (they are counted in the report).
//
// Per-user limits (SOCKET_EVENT_RATE, CHAT_MESSAGE_LIMIT, CHAT_TYPING_LIMIT) and the matchmaking
// settings are the defaults.
func ServerEnv(port int, dataDir string) []string {
	return []string{
		"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port), "DATA_DIR=" + dataDir, "MONGODB_URI=", "REDIS_URL=",
		"JWT_SECRET=soak-test-secret-0123456789abcdef", "BCRYPT_COST=4", "JWT_TTL=3h",
		"LIMIT_CONNECTIONS_PER_IP=0", "LIMIT_HANDSHAKES_PER_SECOND=0", "RECOVERY_MAX_DISCONNECTION=5s",
		"DEBUG_ENDPOINTS=true", "LOG_LEVEL=warn", "LOG_FORMAT=text", "SHUTDOWN_TIMEOUT=20s", "APP_ENV=development",
	}
}

// StartServer runs bin with ServerEnv (plus extra KEY=VALUE settings, which win) and waits until
// /readyz answers 200. The server's stderr goes to logPath.
func StartServer(ctx context.Context, bin, dataDir, logPath string, extra []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := append(ServerEnv(port, dataDir), extra...)
	lf, err := newLogFile(logPath)
	if err != nil {
		return nil, err
	}
	s := &Server{Base: fmt.Sprintf("http://127.0.0.1:%d", port), DataDir: dataDir, Env: env, log: lf,
		exited: make(chan struct{})}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(baseEnv(), env...)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(s.Base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("server exited during start-up (%v); log %s:\n%s", s.err, logPath, lf.tail(2000))
		case <-ctx.Done():
			s.Kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, fmt.Errorf("server not ready within 60s; log:\n%s", lf.tail(2000))
		}
	}
}

// baseEnv keeps what a Go binary needs from the caller's environment.
func baseEnv() []string {
	var out []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Alive reports whether the process still runs.
func (s *Server) Alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits up to within for a clean exit (status 0).
func (s *Server) Stop(within time.Duration) error {
	if !s.Alive() {
		return fmt.Errorf("server had already exited: %v", s.err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(within):
		s.Kill()
		return fmt.Errorf("server did not exit within %v of SIGTERM (killed)", within)
	}
	s.log.Close()
	if s.err != nil {
		return fmt.Errorf("server exit after SIGTERM: %v", s.err)
	}
	return nil
}

// Kill ends the process at once (clean-up after a failure).
func (s *Server) Kill() {
	if s.Alive() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.log.Close()
}

// LogCounts returns the number of WARN and ERROR lines and of panics in the server's log so far,
// and up to max ERROR/panic lines.
func (s *Server) LogCounts(max int) (warn, errorsN, panics int, lines []string) {
	return s.log.counts(max)
}

// Resources are the server's runtime numbers at one moment.
type Resources struct {
	Goroutines  float64 `json:"goroutines"`
	HeapAlloc   float64 `json:"heapAllocBytes"` // after a full GC: live heap
	HeapInuse   float64 `json:"heapInuseBytes"`
	HeapObjects float64 `json:"heapObjects"`
	RSS         float64 `json:"rssBytes"`
	OpenFDs     float64 `json:"openFds"`
	// StoreFiles are the open fds on the embedded store's files (DataDir): FerretDB keeps a pool of
	// up to 100 SQLite connections, each holding the database and its WAL file, that grows with the
	// store's concurrency and is never shrunk. Bounded by that pool, not by the baseline.
	StoreFiles   float64 `json:"storeFileFds"`
	Threads      float64 `json:"threads"`
	Sockets      float64 `json:"socketsConnected"` // maoga_sockets_connected
	CPUSeconds   float64 `json:"cpuSeconds"`
	MeasuredAtMs int64   `json:"measuredAtUnixMs"`
}

// Measure forces a full GC (POST /debug/gc), then reads /metrics. The GC makes the heap numbers
// the live heap rather than whatever garbage the last cycle left.
func (s *Server) Measure(ctx context.Context) (Resources, error) {
	var r Resources
	req, _ := http.NewRequestWithContext(ctx, "POST", s.Base+"/debug/gc", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, fmt.Errorf("POST /debug/gc: %w", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return r, fmt.Errorf("POST /debug/gc: status %d (DEBUG_ENDPOINTS off?)", res.StatusCode)
	}
	m, err := s.Metrics(ctx)
	if err != nil {
		return r, err
	}
	need := map[string]*float64{
		"go_goroutines": &r.Goroutines, "go_memstats_heap_alloc_bytes": &r.HeapAlloc,
		"go_memstats_heap_inuse_bytes": &r.HeapInuse, "go_memstats_heap_objects": &r.HeapObjects,
		"process_resident_memory_bytes": &r.RSS, "process_open_fds": &r.OpenFDs, "go_threads": &r.Threads,
		"maoga_sockets_connected": &r.Sockets, "process_cpu_seconds_total": &r.CPUSeconds,
	}
	for name, dst := range need {
		v, ok := m[name]
		if !ok {
			return r, fmt.Errorf("/metrics has no %s", name)
		}
		*dst = v
	}
	r.StoreFiles = float64(s.storeFiles())
	r.MeasuredAtMs = time.Now().UnixMilli()
	return r, nil
}

// storeFiles counts the server's open fds on files under DataDir (0 where /proc is not readable).
func (s *Server) storeFiles() int {
	pid := s.cmd.Process.Pid
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil || s.DataDir == "" {
		return 0
	}
	dir, err := filepath.Abs(s.DataDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// Metrics reads the unlabelled samples of /metrics.
func (s *Server) Metrics(ctx context.Context) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.Base+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(body), nil
}

// ParseMetrics returns the unlabelled samples of a Prometheus text exposition.
func ParseMetrics(body []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// GoroutineDump fetches the server's goroutine profile (grouped by stack) for the report of a leak.
func (s *Server) GoroutineDump(ctx context.Context) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.Base+"/debug/pprof/goroutine?debug=1", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, errors.New("goroutine profile: status " + res.Status)
	}
	return io.ReadAll(res.Body)
}

// logFile is the server's stderr: written to a file, with WARN/ERROR/panic lines counted.
type logFile struct {
	mu      sync.Mutex
	f       *os.File
	partial []byte
	last    []byte // the last bytes written, for start-up failures
	warn    int
	errs    int
	panics  int
	lines   []string
	closed  bool
}

func newLogFile(path string) (*logFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		_, _ = l.f.Write(p)
	}
	l.last = append(l.last, p...)
	if len(l.last) > 8192 {
		l.last = append([]byte(nil), l.last[len(l.last)-8192:]...)
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// MaxLogLines bounds the error lines kept for the report.
const MaxLogLines = 20

func (l *logFile) line(s string) {
	switch {
	case strings.Contains(s, "level=WARN"):
		l.warn++
	case strings.Contains(s, "level=ERROR"):
		l.errs++
	case strings.HasPrefix(s, "panic:") || strings.HasPrefix(s, "fatal error:"):
		l.panics++
	default:
		return
	}
	if !strings.Contains(s, "level=WARN") && len(l.lines) < MaxLogLines {
		if len(s) > 400 {
			s = s[:400] + "..."
		}
		l.lines = append(l.lines, s)
	}
}

func (l *logFile) counts(max int) (int, int, int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > max {
		lines = lines[:max]
	}
	return l.warn, l.errs, l.panics, append([]string(nil), lines...)
}

func (l *logFile) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.last
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (l *logFile) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		_ = l.f.Close()
	}
}

// apiError is the error envelope of REST answers and failed acks.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// decodeJSON is json.Unmarshal that tolerates nil input.
func decodeJSON(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty body")
	}
	return json.Unmarshal(b, v)
}

// FDSummary lists the server's open file descriptors by kind (/proc/<pid>/fd): files by path,
// pipes and anonymous inodes by kind, sockets by TCP state and local/remote address
// (/proc/net/tcp, tcp6). For the report when fds do not come back. "" where /proc is missing.
func (s *Server) FDSummary() string {
	pid := s.cmd.Process.Pid
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return ""
	}
	tcp := tcpSockets(pid)
	counts := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		key := target
		switch {
		case strings.HasPrefix(target, "socket:["):
			inode := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
			if t, ok := tcp[inode]; ok {
				key = "tcp " + t
			} else {
				key = "socket (not tcp)"
			}
		case strings.HasPrefix(target, "pipe:"):
			key = "pipe"
		case strings.HasPrefix(target, "anon_inode:"):
			key = target
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return counts[keys[i]] > counts[keys[j]] || counts[keys[i]] == counts[keys[j]] && keys[i] < keys[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d open fds of pid %d\n", len(ents), pid)
	for _, k := range keys {
		fmt.Fprintf(&b, "%6d  %s\n", counts[k], k)
	}
	return b.String()
}

// tcpSockets maps socket inodes to "STATE local -> remote" with the server's own listening port
// kept and ephemeral ports replaced by "*", so that sockets of one kind group together.
func tcpSockets(pid int) map[string]string {
	states := map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
		"05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}
	out := map[string]string{}
	listening := map[string]bool{}
	type row struct{ local, remote, state, inode string }
	var rows []row
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			r := row{local: fs[1], remote: fs[2], state: states[fs[3]], inode: fs[9]}
			if r.state == "LISTEN" {
				listening[port(r.local)] = true
			}
			rows = append(rows, r)
		}
	}
	for _, r := range rows {
		lp, rp := port(r.local), port(r.remote)
		if !listening[lp] {
			lp = "*"
		}
		if !listening[rp] {
			rp = "*"
		}
		out[r.inode] = fmt.Sprintf("%s :%s -> :%s", r.state, lp, rp)
	}
	return out
}

// port is the decimal port of a /proc/net/tcp address ("0100007F:1F90").
func port(addr string) string {
	_, hex, ok := strings.Cut(addr, ":")
	if !ok {
		return "?"
	}
	n, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return "?"
	}
	return strconv.FormatUint(n, 10)
}
