package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/maoga/maoga/internal/clientaddr"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/admission"
	"github.com/maoga/maoga/services/matchmaking"
)

// DevJWTSecret is used when JWT_SECRET is not set. Anyone who reads this file can forge tokens for a
// server running with it; FromEnv warns loudly.
const DevJWTSecret = "maoga-development-secret-do-not-use-in-production"

// Config is the server configuration. FromEnv reads it from these environment variables:
//
//	PORT              8080          HTTP port for REST, /socket.io/, health and metrics (one port)
//	HOST              (all)         interface to listen on, e.g. 127.0.0.1
//	MONGODB_URI       (empty)       MongoDB connection string; empty starts the embedded FerretDB (SQLite)
//	MONGODB_DATABASE  maoga         database name
//	MONGODB_TIMEOUT   5s            bound on one database operation, on finding a reachable server and
//	                                on opening a connection: with the database unreachable a request
//	                                fails after about this long with 503 SERVICE_UNAVAILABLE
//	DATA_DIR          ./data        embedded store directory (only without MONGODB_URI)
//	REDIS_URL         (empty)       redis://host:6379/0; when set this process is a cluster node: Redis
//	                                Socket.IO adapter, event bus, presence and matchmaking lease
//	                                (deploy/README-cluster.md); /readyz also checks Redis
//	JWT_SECRET        (dev default) HS256 secret shared by REST and the socket handshake; the default is
//	                                public, a loud warning is logged
//	JWT_TTL           15m           access token lifetime (Go duration)
//	REFRESH_TTL       720h          refresh token lifetime
//	BCRYPT_COST       10            bcrypt cost (4..31); lower only in tests
//	CORS_ORIGINS      *             comma-separated origins allowed for REST and Socket.IO polling;
//	                                "*" any, "none" disables CORS headers
//	BODY_LIMIT        65536         max REST request body in bytes (413 past it)
//	LOG_LEVEL         info          debug | info | warn | error
//	LOG_FORMAT        text          text | json
//	SMTP_URL          (empty)       smtp://user:pass@host:587 (smtps:// for TLS) for email notifications;
//	                                empty: the email channel is marked failed, never "sent"
//	SMTP_FROM         maoga@localhost  sender address of notification mail
//	PUSH_WEBHOOK_URL  (empty)       http(s) URL push notifications are POSTed to; empty: push marked failed
//	PING_INTERVAL     25s           Engine.IO heartbeat interval
//	PING_TIMEOUT      20s           Engine.IO heartbeat timeout
//	MAX_PAYLOAD       1000000       Engine.IO max message size in bytes
//	SHUTDOWN_TIMEOUT  10s           bound on graceful shutdown after SIGTERM/SIGINT
//	EVENT_QUEUE_SIZE  1024          internal events waiting per event handler; past it, deliveries
//	                                that store something (notifications) wait in the stored journal
//	                                (collection event_journal) and run when the handler catches up
//	SOCKET_EVENT_RATE 100           socket events per second per socket (token bucket); past it the
//	                                event is refused (its ack answers RATE_LIMITED), a sustained flood
//	                                disconnects the socket
//	SOCKET_EVENT_BURST 200          bucket size of SOCKET_EVENT_RATE
//	CHAT_MAX_CONTENT  2000          longest chat message in characters after trimming
//	CHAT_MESSAGE_LIMIT 10           chat:message per user per CHAT_MESSAGE_WINDOW (past it: RATE_LIMITED)
//	CHAT_MESSAGE_WINDOW 10s
//	CHAT_TYPING_LIMIT 20            chat:typing per user per CHAT_TYPING_WINDOW
//	CHAT_TYPING_WINDOW 10s
//	CHAT_MAX_JOINED   50            chat rooms one connection may be in at once (past it: JOIN_ERROR)
//	MATCH_TICK        1s            matchmaking round interval
//	MATCH_STATUS_INTERVAL 5s        matchmaking:status to subscribers at least this often (and on change)
//	MATCH_MAX_SEARCH  3m            a request still searching after this expires (matchmaking:expired)
//	MATCH_RELAXATION  0s:100,10s:200,20s:400,40s:800,60s:*
//	                                skill window by search time; "*": any skill, criteria ignored
//	MATCH_REGIONS     (any)         comma-separated allowed regions; empty: any id of a-z, 0-9 and '-'
//	LOBBY_IDLE_TIMEOUT 30m          a forming/ready lobby with no change and no chat message for this
//	                                long is closed (lobby:closed, reason idle_timeout); "off" disables
//	LOBBY_ACTIVE_TIMEOUT 6h         the same for a started (active) lobby: collects abandoned games
//	DEBUG_ENDPOINTS   false         true: /debug/pprof/ and POST /debug/gc (a full GC, then the
//	                                runtime numbers as JSON), answered to loopback peers only
//
//	APP_ENV           development   development | production. production refuses to start with the
//	                                development JWT secret or with CORS_ORIGINS unset or "*" (it must
//	                                list origins like https://game.example), and refuses Socket.IO
//	                                requests (websocket upgrades included) whose Origin is neither
//	                                listed nor the server's own host (see appenv.go)
//
// Scale-out and edge (EdgeConfig, cluster helper):
//
//	RECOVERY_MAX_DISCONNECTION 2m   Socket.IO connection state recovery window: a client whose
//	                                transport dropped and that reconnects to the same node within it
//	                                gets its socket back (id, rooms, missed broadcasts); 0 disables
//	REDIS_SHARDED     false         true: the Socket.IO adapter uses Redis 7 sharded pub/sub
//	                                (SPUBLISH/SSUBSCRIBE, like Node's createShardedAdapter)
//	TRUSTED_PROXIES   (none)        comma-separated CIDRs/addresses of reverse proxies whose
//	                                X-Forwarded-For / X-Real-IP are believed (right-most untrusted hop)
//	LIMIT_CONNECTIONS_PER_IP 100    open Engine.IO sessions per client address (0: no limit)
//	LIMIT_HANDSHAKES_PER_SECOND 20  handshakes per second per client address (0: no limit)
//	LIMIT_HANDSHAKE_BURST 40        bucket size of LIMIT_HANDSHAKES_PER_SECOND
//	LIMIT_ROOMS_PER_SOCKET 1000     rooms one socket may be in, its own not counted (0: no limit)
//	LIMIT_NAMESPACES_PER_CLIENT 32  namespaces one connection may join at once (0: no limit)
//
// Load shedding (services/admission): REST calls under /api/ and client socket events (chat:typing
// excepted) are admitted by one adaptive concurrency limiter; past it they are refused at once with
// SERVICE_UNAVAILABLE "server busy, retry later" (REST: 503, Retry-After: 1):
//
//	LIMIT_INFLIGHT_MAX 100          upper bound of the in-flight limit (0: no load shedding)
//	LIMIT_INFLIGHT_MIN 4            lower bound of the in-flight limit (1..LIMIT_INFLIGHT_MAX)
//	LIMIT_INFLIGHT_TARGET_LATENCY 300ms
//	                                a window of completions whose average latency (admission to
//	                                answer) is above this lowers the limit ×0.9 (×target/average when
//	                                lower, at most halving it); a faster one raises it by one
//	LIMIT_INFLIGHT_QUEUE_WAIT 300ms how long a request waits for a free slot before it is refused
//	                                (0: refused at once)
type Config struct {
	Host            string
	Port            int
	MongoURI        string
	MongoDatabase   string
	MongoTimeout    time.Duration
	DataDir         string
	RedisURL        string
	JWTSecret       string
	JWTTTL          time.Duration
	RefreshTTL      time.Duration
	BcryptCost      int
	CORSOrigins     []string
	BodyLimit       int64
	LogLevel        slog.Level
	LogFormat       string
	SMTPURL         string
	SMTPFrom        string
	PushWebhookURL  string
	PingInterval    time.Duration
	PingTimeout     time.Duration
	MaxPayload      int
	ShutdownTimeout time.Duration
	EventQueueSize  int
	EventRate       int
	EventBurst      int

	// Chat (services/chat, handlers/socket/chat.go).
	ChatMaxContent    int
	ChatMessageLimit  int
	ChatMessageWindow time.Duration
	ChatTypingLimit   int
	ChatTypingWindow  time.Duration
	ChatMaxJoined     int
	// Matchmaking (services/matchmaking; matchmaking helper).
	MatchTick           time.Duration
	MatchStatusInterval time.Duration
	MatchMaxSearch      time.Duration
	MatchLevels         []matchmaking.Level
	MatchRegions        []string
	// Lobbies (services/lobby): idle timeouts, negative = off.
	LobbyIdleTimeout   time.Duration
	LobbyActiveTimeout time.Duration

	// UsingDevSecret is set by FromEnv when JWT_SECRET was empty.
	UsingDevSecret bool

	// AppEnv is APP_ENV: EnvDevelopment or EnvProduction (appenv.go).
	AppEnv string
	// AccountSweepInterval is how often each node checks that the users connected to it are still
	// active (socket.SweepInactiveAccounts; no environment variable). 0: 10s; negative: off.
	AccountSweepInterval time.Duration
	// DebugEndpoints is DEBUG_ENDPOINTS: serve /debug/pprof/ and POST /debug/gc to loopback peers
	// (handlers/rest/debug.go; the soak test reads its baselines after a forced GC). Default off.
	DebugEndpoints bool

	EdgeConfig // scale-out and edge settings (cluster helper; end of this file)
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		Port: 8080, MongoDatabase: "maoga", MongoTimeout: models.DefaultTimeout, DataDir: "./data", JWTSecret: DevJWTSecret, UsingDevSecret: true,
		JWTTTL: 15 * time.Minute, RefreshTTL: 720 * time.Hour, BcryptCost: 10, CORSOrigins: []string{"*"},
		BodyLimit: 64 << 10, LogLevel: slog.LevelInfo, LogFormat: "text", SMTPFrom: "maoga@localhost",
		PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1_000_000,
		ShutdownTimeout: 10 * time.Second, EventQueueSize: 1024, EventRate: 100, EventBurst: 200,
		// Chat.
		ChatMaxContent: 2000, ChatMessageLimit: 10, ChatMessageWindow: 10 * time.Second,
		ChatTypingLimit: 20, ChatTypingWindow: 10 * time.Second, ChatMaxJoined: 50,
		// Matchmaking.
		MatchTick: time.Second, MatchStatusInterval: 5 * time.Second, MatchMaxSearch: 3 * time.Minute,
		MatchLevels: append([]matchmaking.Level(nil), matchmaking.DefaultLevels...),
		// Lobbies.
		LobbyIdleTimeout: 30 * time.Minute, LobbyActiveTimeout: 6 * time.Hour,
		// APP_ENV.
		AppEnv: EnvDevelopment,
		// Scale-out and edge.
		EdgeConfig: edgeDefaults(),
	}
}

// FromEnv reads the configuration; getenv is os.Getenv in main (tests pass a map lookup).
// Every malformed value is reported, not silently replaced by its default.
func FromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Defaults()
	var problems []error
	str := func(key string, dst *string) {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			*dst = v
		}
	}
	num := func(key string, dst *int, min, max int) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			problems = append(problems, fmt.Errorf("%s=%q: want an integer in [%d, %d]", key, v, min, max))
			return
		}
		*dst = n
	}
	dur := func(key string, dst *time.Duration) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Errorf("%s=%q: want a positive duration like 15m", key, v))
			return
		}
		*dst = d
	}
	str("HOST", &c.Host)
	num("PORT", &c.Port, 0, 65535)
	str("MONGODB_URI", &c.MongoURI)
	str("MONGODB_DATABASE", &c.MongoDatabase)
	dur("MONGODB_TIMEOUT", &c.MongoTimeout)
	str("DATA_DIR", &c.DataDir)
	str("REDIS_URL", &c.RedisURL)
	if v := getenv("JWT_SECRET"); v != "" {
		c.JWTSecret, c.UsingDevSecret = v, false
	}
	dur("JWT_TTL", &c.JWTTTL)
	dur("REFRESH_TTL", &c.RefreshTTL)
	num("BCRYPT_COST", &c.BcryptCost, 4, 31)
	if v := strings.TrimSpace(getenv("CORS_ORIGINS")); v != "" {
		c.CORSOrigins = nil
		if v != "none" {
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.CORSOrigins = append(c.CORSOrigins, o)
				}
			}
		}
	}
	var limit int
	num("BODY_LIMIT", &limit, 1024, 64<<20)
	if limit > 0 {
		c.BodyLimit = int64(limit)
	}
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			problems = append(problems, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	if v := strings.TrimSpace(getenv("LOG_FORMAT")); v != "" {
		if v != "text" && v != "json" {
			problems = append(problems, fmt.Errorf("LOG_FORMAT=%q: want text or json", v))
		} else {
			c.LogFormat = v
		}
	}
	str("SMTP_URL", &c.SMTPURL)
	str("SMTP_FROM", &c.SMTPFrom)
	str("PUSH_WEBHOOK_URL", &c.PushWebhookURL)
	dur("PING_INTERVAL", &c.PingInterval)
	dur("PING_TIMEOUT", &c.PingTimeout)
	num("MAX_PAYLOAD", &c.MaxPayload, 1024, 100<<20)
	dur("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	num("EVENT_QUEUE_SIZE", &c.EventQueueSize, 1, 1_000_000)
	num("SOCKET_EVENT_RATE", &c.EventRate, 1, 1_000_000)
	num("SOCKET_EVENT_BURST", &c.EventBurst, 1, 1_000_000)
	// Chat.
	num("CHAT_MAX_CONTENT", &c.ChatMaxContent, 1, 100_000)
	num("CHAT_MESSAGE_LIMIT", &c.ChatMessageLimit, 1, 1_000_000)
	dur("CHAT_MESSAGE_WINDOW", &c.ChatMessageWindow)
	num("CHAT_TYPING_LIMIT", &c.ChatTypingLimit, 1, 1_000_000)
	dur("CHAT_TYPING_WINDOW", &c.ChatTypingWindow)
	num("CHAT_MAX_JOINED", &c.ChatMaxJoined, 1, 10_000)
	// Lobbies: a duration, or "off".
	durOrOff := func(key string, dst *time.Duration) {
		if strings.EqualFold(strings.TrimSpace(getenv(key)), "off") {
			*dst = -1
			return
		}
		dur(key, dst)
	}
	durOrOff("LOBBY_IDLE_TIMEOUT", &c.LobbyIdleTimeout)
	durOrOff("LOBBY_ACTIVE_TIMEOUT", &c.LobbyActiveTimeout)
	// Matchmaking.
	dur("MATCH_TICK", &c.MatchTick)
	dur("MATCH_STATUS_INTERVAL", &c.MatchStatusInterval)
	dur("MATCH_MAX_SEARCH", &c.MatchMaxSearch)
	if v := strings.TrimSpace(getenv("MATCH_RELAXATION")); v != "" {
		if l, err := matchmaking.ParseLevels(v); err != nil {
			problems = append(problems, fmt.Errorf("MATCH_RELAXATION=%q: %w", v, err))
		} else {
			c.MatchLevels = l
		}
	}
	if v := strings.TrimSpace(getenv("MATCH_REGIONS")); v != "" {
		c.MatchRegions = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.ToLower(strings.TrimSpace(r)); r != "" {
				c.MatchRegions = append(c.MatchRegions, r)
			}
		}
		if err := (matchmaking.Config{Regions: c.MatchRegions}).Validate(); err != nil {
			problems = append(problems, fmt.Errorf("MATCH_REGIONS=%q: %w", v, err))
		}
	}
	if v := strings.TrimSpace(getenv("DEBUG_ENDPOINTS")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("DEBUG_ENDPOINTS=%q: want true or false (1 or 0)", v))
		} else {
			c.DebugEndpoints = b
		}
	}
	problems = append(problems, c.EdgeConfig.fromEnv(getenv)...) // scale-out and edge (cluster helper)
	if len(c.JWTSecret) < 16 && !c.UsingDevSecret {
		problems = append(problems, errors.New("JWT_SECRET: use at least 16 characters"))
	}
	// APP_ENV: production refuses the public development defaults (appenv.go).
	if v := strings.TrimSpace(getenv("APP_ENV")); v != "" {
		if v != EnvDevelopment && v != EnvProduction {
			problems = append(problems, fmt.Errorf("APP_ENV=%q: want development or production", v))
		} else {
			c.AppEnv = v
		}
	}
	problems = append(problems, c.productionProblems()...)
	return c, errors.Join(problems...)
}

// Addr is the listen address.
func (c Config) Addr() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }

// NewLogger builds the slog logger of LOG_LEVEL and LOG_FORMAT on stderr.
func (c Config) NewLogger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// ── Scale-out and edge settings (cluster helper) ─────────────────────────────────────────────────

// EdgeConfig holds the settings of the cluster and of the network edge: connection state recovery,
// the adapter's sharded mode, trusted reverse proxies and the per-client limits of the protocol
// server. A zero limit means no limit (the engine's own defaults are written out in edgeDefaults).
type EdgeConfig struct {
	RecoveryMaxDisconnection time.Duration  // RECOVERY_MAX_DISCONNECTION; 0: recovery off
	RedisSharded             bool           // REDIS_SHARDED
	TrustedProxies           []netip.Prefix // TRUSTED_PROXIES
	LimitConnectionsPerIP    int            // LIMIT_CONNECTIONS_PER_IP
	LimitHandshakesPerSecond float64        // LIMIT_HANDSHAKES_PER_SECOND
	LimitHandshakeBurst      int            // LIMIT_HANDSHAKE_BURST
	LimitRoomsPerSocket      int            // LIMIT_ROOMS_PER_SOCKET
	LimitNamespacesPerClient int            // LIMIT_NAMESPACES_PER_CLIENT

	// Load shedding (services/admission).
	LimitInflightMax           int           // LIMIT_INFLIGHT_MAX; 0: off
	LimitInflightMin           int           // LIMIT_INFLIGHT_MIN
	LimitInflightTargetLatency time.Duration // LIMIT_INFLIGHT_TARGET_LATENCY
	LimitInflightQueueWait     time.Duration // LIMIT_INFLIGHT_QUEUE_WAIT; 0: no wait
}

func edgeDefaults() EdgeConfig {
	return EdgeConfig{RecoveryMaxDisconnection: 2 * time.Minute, LimitConnectionsPerIP: 100,
		LimitHandshakesPerSecond: 20, LimitHandshakeBurst: 40, LimitRoomsPerSocket: 1000, LimitNamespacesPerClient: 32,
		LimitInflightMax: admission.DefaultMax, LimitInflightMin: admission.DefaultMin,
		LimitInflightTargetLatency: admission.DefaultTargetLatency, LimitInflightQueueWait: admission.DefaultQueueWait}
}

// Admission is the load-shedding limiter of these settings (gate: admission.Options.Gate); nil when
// LIMIT_INFLIGHT_MAX is 0.
func (e EdgeConfig) Admission(log *slog.Logger, gate func() error) *admission.Limiter {
	if e.LimitInflightMax <= 0 {
		return nil
	}
	wait := e.LimitInflightQueueWait
	if wait == 0 {
		wait = -1 // admission: negative is "no wait"
	}
	return admission.New(admission.Options{Max: e.LimitInflightMax, Min: e.LimitInflightMin,
		TargetLatency: e.LimitInflightTargetLatency, QueueWait: wait, Gate: gate, Logger: log})
}

// fromEnv reads the EdgeConfig variables into e and returns one problem per malformed value.
func (e *EdgeConfig) fromEnv(getenv func(string) string) []error {
	var problems []error
	count := func(key string, dst *int, min int) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > 10_000_000 {
			what := "(0: no limit)"
			if min > 0 {
				what = ""
			}
			problems = append(problems, fmt.Errorf("%s=%q: want an integer >= %d %s", key, v, min, what))
			return
		}
		*dst = n
	}
	if v := strings.TrimSpace(getenv("RECOVERY_MAX_DISCONNECTION")); v != "" {
		d, err := time.ParseDuration(v) // "0" parses: recovery off
		if err != nil || d < 0 {
			problems = append(problems, fmt.Errorf("RECOVERY_MAX_DISCONNECTION=%q: want a duration like 2m, or 0 to disable", v))
		} else {
			e.RecoveryMaxDisconnection = d
		}
	}
	if v := strings.TrimSpace(getenv("REDIS_SHARDED")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("REDIS_SHARDED=%q: want true or false (1 or 0)", v))
		} else {
			e.RedisSharded = b
		}
	}
	if v := strings.TrimSpace(getenv("TRUSTED_PROXIES")); v != "" {
		list, err := clientaddr.ParseList(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("TRUSTED_PROXIES=%q: %w", v, err))
		} else {
			e.TrustedProxies = list
		}
	}
	count("LIMIT_CONNECTIONS_PER_IP", &e.LimitConnectionsPerIP, 0)
	if v := strings.TrimSpace(getenv("LIMIT_HANDSHAKES_PER_SECOND")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1e6) { // NaN fails both
			problems = append(problems, fmt.Errorf("LIMIT_HANDSHAKES_PER_SECOND=%q: want a number >= 0 (0: no limit)", v))
		} else {
			e.LimitHandshakesPerSecond = f
		}
	}
	count("LIMIT_HANDSHAKE_BURST", &e.LimitHandshakeBurst, 1)
	count("LIMIT_ROOMS_PER_SOCKET", &e.LimitRoomsPerSocket, 0)
	count("LIMIT_NAMESPACES_PER_CLIENT", &e.LimitNamespacesPerClient, 0)
	// Load shedding.
	count("LIMIT_INFLIGHT_MAX", &e.LimitInflightMax, 0)
	count("LIMIT_INFLIGHT_MIN", &e.LimitInflightMin, 1)
	if e.LimitInflightMax > 0 && e.LimitInflightMin > e.LimitInflightMax {
		problems = append(problems, fmt.Errorf("LIMIT_INFLIGHT_MIN=%d: want at most LIMIT_INFLIGHT_MAX (%d)",
			e.LimitInflightMin, e.LimitInflightMax))
	}
	latency := func(key string, dst *time.Duration, zeroOK bool) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d == 0 && !zeroOK) || d > time.Minute {
			what := "a positive duration like 300ms"
			if zeroOK {
				what = "a duration like 300ms, or 0 for no wait"
			}
			problems = append(problems, fmt.Errorf("%s=%q: want %s (at most 1m)", key, v, what))
			return
		}
		*dst = d
	}
	latency("LIMIT_INFLIGHT_TARGET_LATENCY", &e.LimitInflightTargetLatency, false)
	latency("LIMIT_INFLIGHT_QUEUE_WAIT", &e.LimitInflightQueueWait, true)
	return problems
}

// offIfZero maps "0: no limit" to the protocol server's "negative: off".
func offIfZero[N int | float64](n N) N {
	if n == 0 {
		return -1
	}
	return n
}
