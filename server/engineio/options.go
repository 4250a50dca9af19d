package engineio

import (
	"log/slog"
	"net/http"
	"time"
)

// Transport names as they appear in the "transport" query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// DefaultMaxQueuedBytes is Options.MaxQueuedBytes when unset.
const DefaultMaxQueuedBytes = 16 << 20

// Options configures a Server. Zero values take the defaults of Node's engine.io
// (except Path, which Node derives from its attach options).
type Options struct {
	Path              string        // default "/engine.io/"
	PingInterval      time.Duration // default 25s
	PingTimeout       time.Duration // default 20s
	UpgradeTimeout    time.Duration // default 10s
	MaxPayload        int           // bytes, default 1_000_000
	Transports        []string      // default {"polling", "websocket"}
	DisableUpgrades   bool
	AllowRequest      func(r *http.Request) error // error → 403 {"code":4,"message":err.Error()}
	CORS              *CORSOptions                // nil = no CORS headers
	PerMessageDeflate *DeflateOptions             // nil = off
	Cookie            *CookieOptions              // nil = no sticky cookie
	MaxQueuedPackets  int                         // per-connection outgoing bound (default 1024)
	// MaxQueuedBytes bounds the bytes of the messages queued for one connection and not yet handed
	// to its transport (default 16 MiB). Together with MaxQueuedPackets it decides when a client is
	// too slow: crossing either closes it ("transport error", ErrQueueFull). A Send to an empty queue
	// is always accepted, so one message of up to MaxPayload can always be sent.
	MaxQueuedBytes int
	// WriteTimeout bounds every websocket write batch and every polling response
	// (default 10s). A client that does not read within it is closed ("transport error").
	WriteTimeout time.Duration
	// Limits bound connections and handshakes per client address (see Limits;
	// defaults 100 sessions, 20 handshakes/s burst 40, loopback not limited).
	Limits Limits
	// ClientAddress names the client of a request: behind a reverse proxy,
	// the address the proxy forwarded for (only when the proxy is trusted —
	// clients can send the headers too). It fills Handshake.Address and, when
	// Limits.ClientIP is not set, keys the per-address limits (loopback
	// results are not limited, as by default). Default: the host of RemoteAddr.
	ClientAddress func(r *http.Request) string
	Logger        *slog.Logger
	// ReadMode chooses how websockets are read (default ReadModeEpoll on Linux,
	// ReadModeGoroutine elsewhere).
	ReadMode ReadMode
}

// ReadMode is how websocket connections are read.
type ReadMode int

const (
	// ReadModeDefault is ReadModeEpoll where it is supported (Linux), else ReadModeGoroutine.
	ReadModeDefault ReadMode = iota
	// ReadModeGoroutine gives every websocket a reader goroutine blocked on its socket
	// (about 4 KB of stack per idle session).
	ReadModeGoroutine
	// ReadModeEpoll (Linux) reads plain TCP websockets from a few epoll pollers: an idle
	// session has no goroutine; one runs only while it has bytes to handle. Websockets
	// over TLS (a net.Conn that is not a *net.TCPConn) still get a reader goroutine.
	// Elsewhere it means ReadModeGoroutine.
	ReadModeEpoll
)

// String returns "goroutine" or "epoll" ("default" for ReadModeDefault).
func (m ReadMode) String() string {
	switch m {
	case ReadModeGoroutine:
		return "goroutine"
	case ReadModeEpoll:
		return "epoll"
	}
	return "default"
}

// CORSOptions mirrors the subset of the `cors` package options that engine.io users set.
type CORSOptions struct {
	// Origins allowed; "*" allows any origin. With Credentials, "*" reflects the
	// request Origin (browsers refuse "*" with credentials).
	Origins []string
	// AllowOrigin, if set, decides instead of Origins.
	AllowOrigin    func(origin string) bool
	Credentials    bool
	AllowedHeaders []string // preflight: default reflects Access-Control-Request-Headers
	ExposedHeaders []string
	MaxAge         time.Duration // preflight cache, 0 = header not sent
}

// DeflateOptions enables permessage-deflate on websocket connections. Both sides
// are negotiated without context takeover, so no compressor state is kept per
// connection between messages (memory stays flat for idle clients).
type DeflateOptions struct {
	Threshold int // messages shorter than this are sent uncompressed (default 1024, as Node)
	Level     int // compress/flate level (default flate.BestSpeed)
}

// CookieOptions sets a sticky-session cookie holding the sid on the handshake
// response, like Node's `cookie` option.
type CookieOptions struct {
	Name     string // default "io"
	Path     string // default "/"
	Domain   string
	MaxAge   time.Duration // 0 = session cookie
	HTTPOnly bool
	Secure   bool
	SameSite http.SameSite // default Lax
}

func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = "/engine.io/"
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.UpgradeTimeout <= 0 {
		o.UpgradeTimeout = 10 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1_000_000
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{TransportPolling, TransportWebSocket}
	}
	if o.MaxQueuedPackets <= 0 {
		o.MaxQueuedPackets = 1024
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadMode != ReadModeGoroutine {
		o.ReadMode = ReadModeGoroutine
		if epollSupported {
			o.ReadMode = ReadModeEpoll
		}
	}
	if d := o.PerMessageDeflate; d != nil {
		c := *d
		if c.Threshold <= 0 {
			c.Threshold = 1024
		}
		if c.Level == 0 {
			c.Level = 1 // flate.BestSpeed
		}
		o.PerMessageDeflate = &c
	}
	if ck := o.Cookie; ck != nil {
		c := *ck
		if c.Name == "" {
			c.Name = "io"
		}
		if c.Path == "" {
			c.Path = "/"
		}
		if c.SameSite == 0 {
			c.SameSite = http.SameSiteLaxMode
		}
		o.Cookie = &c
	}
	return o
}

func (o *Options) allows(transport string) bool {
	for _, t := range o.Transports {
		if t == transport {
			return true
		}
	}
	return false
}
