package main

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// The binary's lifecycle: serve, then SIGTERM → graceful shutdown → exit code 0 within the bound.
func TestSIGTERMExitsZero(t *testing.T) {
	port := freePort(t)
	t.Setenv("HOST", "127.0.0.1")
	t.Setenv("PORT", port)
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("JWT_SECRET", "main-test-secret-0123456789")
	t.Setenv("BCRYPT_COST", "4")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("SHUTDOWN_TIMEOUT", "5s")
	code := make(chan int, 1)
	go func() { code <- run() }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://127.0.0.1:" + port + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case c := <-code:
			t.Fatalf("server exited early with %d", c)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d, want 0", c)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Fatalf("shutdown took %v", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10s after SIGTERM")
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		t.Fatal("port still open after exit")
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	t.Setenv("PORT", "not-a-port")
	if c := run(); c != 2 {
		t.Fatalf("exit code %d, want 2", c)
	}
}

// APP_ENV=production refuses to start on the public defaults (exit 2, before anything is opened).
func TestProductionOnDefaultsExitsTwo(t *testing.T) {
	t.Setenv("APP_ENV", "production")
	t.Setenv("DATA_DIR", t.TempDir())
	if c := run(); c != 2 {
		t.Fatalf("exit code %d, want 2", c)
	}
	t.Setenv("JWT_SECRET", "main-test-secret-0123456789")
	t.Setenv("CORS_ORIGINS", "*")
	if c := run(); c != 2 {
		t.Fatalf("with CORS_ORIGINS=*: exit code %d, want 2", c)
	}
}

// `maoga admin` with bad arguments prints the usage and exits 2 without opening the store.
func TestAdminUsageExitsTwo(t *testing.T) {
	t.Setenv("DATA_DIR", t.TempDir())
	old := os.Args
	defer func() { os.Args = old }()
	os.Args = []string{"maoga", "admin", "set-status", "alice"}
	if c := run(); c != 2 {
		t.Fatalf("exit code %d, want 2", c)
	}
}
