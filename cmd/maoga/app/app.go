// Package app wires the Maoga server: store, event bus, services, the REST API (Echo) and the
// Socket.IO server, served on one port (`/socket.io/` → Socket.IO, everything else → Echo).
// cmd/maoga runs it; integration tests start it on a free port with the embedded store in a temp dir.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/adapter"
	redisadapter "github.com/maoga/maoga/adapter/redis"
	"github.com/maoga/maoga/handlers/rest"
	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/handlers/web"
	"github.com/maoga/maoga/internal/clientaddr"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/admission"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/chat"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/events/redisbus"
	"github.com/maoga/maoga/services/events/storejournal"
	"github.com/maoga/maoga/services/friends"
	"github.com/maoga/maoga/services/games"
	"github.com/maoga/maoga/services/lobby"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/matchmaking/redislease"
	"github.com/maoga/maoga/services/metrics"
	"github.com/maoga/maoga/services/notifications"
	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/presence/redispresence"
	"github.com/maoga/maoga/services/ratelimit"
	"github.com/maoga/maoga/services/realtime"
	"github.com/maoga/maoga/services/users"
)

// App is a running (or ready to run) server.
type App struct {
	Config Config
	Log    *slog.Logger

	Store         *models.Store
	Bus           EventBus // events.Memory, or redisbus.Bus when REDIS_URL is set (cluster)
	Metrics       *metrics.App
	IO            *socketio.Server
	Emitter       realtime.Emitter
	Auth          *auth.Service
	Users         *users.Service
	Friends       *friends.Service
	Presence      presence.Service
	Notifications *notifications.Service
	Chat          *chat.Service
	Games         *games.Service       // catalogue, seeded at start-up (lobby helper)
	Lobbies       *lobby.Service       // lobbies; matchmaking calls CreateForMatch/OpenLobbyOf (lobby helper)
	Matchmaking   *matchmaking.Service // requests and the ticking matcher (matchmaking helper)
	API           *rest.API
	// Admission sheds load (LIMIT_INFLIGHT_*): one adaptive in-flight limit over the REST calls and
	// the socket events; nil when LIMIT_INFLIGHT_MAX is 0.
	Admission *admission.Limiter

	handler  http.Handler
	redis    *redis.Client
	sockets  atomic.Int64 // sockets whose disconnect handlers have not finished
	unsub    []func()
	draining atomic.Bool

	// Cluster mode (REDIS_URL set; cluster helper): the Socket.IO adapter link and the Redis presence,
	// both closed in closeResources (presence first: it may still announce offline through the adapter).
	cluster       *redisadapter.Cluster
	redisPresence *redispresence.Service
	// presenceSaves writes presence to the users collection behind the presence service (both
	// kinds), so a disconnect storm neither waits for the store nor loses saves; flushed in
	// closeResources after the presence service, before the store closes.
	presenceSaves *presence.SaveQueue

	mu     sync.Mutex
	server *http.Server
	closed bool
}

// EventBus is the event bus the app runs: events.Bus plus Close.
type EventBus interface {
	events.Bus
	Close(ctx context.Context) error
}

// New builds everything (opening the store: the embedded FerretDB starts here) without listening.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if log == nil {
		log = cfg.NewLogger()
	}
	if cfg.UsingDevSecret {
		log.Warn("!!! JWT_SECRET is not set: using the PUBLIC development secret. Anyone can forge tokens. " +
			"Set JWT_SECRET before exposing this server. !!!")
	}
	if err := errors.Join(cfg.productionProblems()...); err != nil { // APP_ENV=production (appenv.go)
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Metrics: metrics.NewApp()}
	ok := false
	defer func() {
		if !ok {
			a.closeResources(context.Background())
		}
	}()

	store, err := models.Open(ctx, models.Config{URI: cfg.MongoURI, Database: cfg.MongoDatabase,
		DataDir: cfg.DataDir, Timeout: cfg.MongoTimeout, Logger: log.With("component", "store")})
	if err != nil {
		return nil, err
	}
	a.Store = store
	// Admission also refuses at once while the store is known to be down (its outage watch): a
	// request would only wait MONGODB_TIMEOUT for the same SERVICE_UNAVAILABLE.
	a.Admission = cfg.Admission(log, func() error {
		if store.Down() {
			return errs.Unavailable(errs.MsgUnavailable, models.ErrStoreDown)
		}
		return nil
	})
	if a.Admission != nil {
		a.Metrics.RegisterAdmission(a.Admission)
	}
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		opt.MaxRetries = -1 // readiness wants the answer now, not after retries
		a.redis = redis.NewClient(opt)
	}
	// ── Cluster (cluster helper): with REDIS_URL this process is one node of a cluster. The Socket.IO
	// adapter (adapter/redis) carries broadcasts and room operations to the other nodes, the event bus
	// shares internal events over "app:events" (ClusterOnce handlers run once cluster-wide), and
	// presence counts sockets across nodes (set up below, once its dependencies exist). Every Redis
	// part keeps local delivery going while Redis is down.
	var ioAdapter adapter.Factory // nil: in-memory adapter
	nodeID := redisbus.NodeID()
	// ClusterOnce deliveries (stored notifications) that cannot run now — a burst past the queue, a
	// failed handler, a shutdown out of time — wait in the stored journal instead of being dropped,
	// and any node (this one after a restart too) runs them.
	busOpts := events.MemoryOptions{Logger: log.With("component", "events"), QueueSize: cfg.EventQueueSize,
		Journal: storejournal.New(store)}
	var busStats func() events.MemoryStats
	if a.redis != nil {
		log.Info("cluster mode: Redis adapter, event bus and presence", "node", nodeID)
		a.cluster = redisadapter.NewCluster(a.redis, redisadapter.Options{Logger: log, Sharded: cfg.RedisSharded})
		ioAdapter = a.cluster.Factory()
		rb := redisbus.New(a.redis, redisbus.Options{Origin: nodeID, Logger: log, Memory: busOpts})
		a.Bus, busStats = rb, rb.LocalStats
	} else {
		mb := events.NewMemory(busOpts)
		a.Bus, busStats = mb, mb.Stats
	}
	registerBusMetrics(a.Metrics.Registry, busStats)

	// Socket.IO first: services emit through its main namespace.
	var cors *engineio.CORSOptions
	if len(cfg.CORSOrigins) > 0 {
		cors = &engineio.CORSOptions{Origins: cfg.CORSOrigins}
	}
	// Edge (cluster helper): behind trusted reverse proxies the client's address comes from
	// X-Forwarded-For, for the engine's per-address limits, handshake.address and REST alike.
	clientIP := clientaddr.New(cfg.TrustedProxies).ClientIP
	var recovery *socketio.RecoveryOptions
	if cfg.RecoveryMaxDisconnection > 0 {
		// The handshake middleware runs for recovered sessions too (token and account checked on
		// every connect); socket.Register vets the restored rooms.
		recovery = &socketio.RecoveryOptions{MaxDisconnectionDuration: cfg.RecoveryMaxDisconnection, RunMiddlewares: true}
	}
	a.IO = socketio.NewServer(socketio.Options{
		Engine: engineio.Options{PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout,
			MaxPayload: cfg.MaxPayload, CORS: cors, Logger: log.With("component", "engineio"),
			ClientAddress: clientIP,
			Limits: engineio.Limits{ConnectionsPerIP: offIfZero(cfg.LimitConnectionsPerIP),
				HandshakesPerSecond: offIfZero(cfg.LimitHandshakesPerSecond), HandshakeBurst: cfg.LimitHandshakeBurst}},
		Logger:                  log.With("component", "socketio"),
		Adapter:                 ioAdapter,
		ConnectionStateRecovery: recovery,
		Limits: socketio.Limits{EventsPerSecond: float64(cfg.EventRate), EventBurst: cfg.EventBurst,
			RateLimitedAck:    socket.RateLimitedAck,
			MaxRoomsPerSocket: offIfZero(cfg.LimitRoomsPerSocket), MaxNamespacesPerClient: offIfZero(cfg.LimitNamespacesPerClient)},
	})
	nsp := a.IO.Of("/")
	a.Emitter = countingEmitter{inner: socket.Emitter(nsp), m: a.Metrics}

	userModels, friendshipModels := models.NewUsers(store), models.NewFriendships(store)
	a.Users = users.New(users.Options{Store: store, Emitter: a.Emitter, Events: a.Bus, Logger: log})
	a.unsub = append(a.unsub, a.Users.Close) // pending login-grace checks (LoginGrace)
	a.Friends = friends.New(store, a.Users, a.Bus, log)
	a.Users.SetFriends(a.Friends)
	a.presenceSaves = presence.NewSaveQueue(presence.FromModels(userModels, friendshipModels),
		presence.SaveQueueOptions{AttemptTimeout: cfg.MongoTimeout, Logger: log})
	if a.redis != nil { // cluster: sockets counted across nodes, dead nodes' users go offline (cluster helper)
		a.redisPresence, err = redispresence.New(redispresence.Options{Client: a.redis,
			Users: a.presenceSaves, Friends: a.Friends, Emitter: a.Emitter,
			Node: nodeID, Logger: log})
		if err != nil {
			return nil, err
		}
		a.Presence = a.redisPresence
	} else {
		a.Presence = presence.NewLocal(presence.LocalOptions{Users: a.presenceSaves, Friends: a.Friends, Emitter: a.Emitter})
	}
	a.Users.SetPresence(a.Presence)
	a.Users.SetUnsaved(a.presenceSaves)
	a.Auth, err = auth.New(store, auth.Config{Secret: []byte(cfg.JWTSecret), AccessTTL: cfg.JWTTTL,
		RefreshTTL: cfg.RefreshTTL, BcryptCost: cfg.BcryptCost}, a.Bus, a.Users, log)
	if err != nil {
		return nil, err
	}

	// Rooms: notification:count (and its query) only when a socket of the user is in its user room on
	// some node (asked through the adapter); recovered sockets get a fresh count (socket.NotificationCount).
	nopts := notifications.Options{Store: models.NewNotifications(store), Users: userModels, Emitter: a.Emitter,
		Rooms: socket.RoomUsers(nsp), Logger: log}
	if cfg.SMTPURL != "" {
		if nopts.Email, err = notifications.NewSMTPSender(cfg.SMTPURL, cfg.SMTPFrom, 0); err != nil {
			return nil, fmt.Errorf("SMTP_URL: %w", err)
		}
	}
	if cfg.PushWebhookURL != "" {
		if nopts.Push, err = notifications.NewWebhookPush(cfg.PushWebhookURL, 0); err != nil {
			return nil, fmt.Errorf("PUSH_WEBHOOK_URL: %w", err)
		}
	}
	nopts.Channels = notifications.ConfiguredChannels(notifications.DefaultChannels, nopts.Email != nil, nopts.Push != nil)
	a.Notifications = notifications.New(nopts)
	a.unsub = append(a.unsub, a.Notifications.Subscribe(a.Bus))

	// Games catalogue and lobbies (lobby helper). The idle sweeper stops with the other subscriptions.
	a.Games = games.New(store)
	if err := a.Games.Seed(ctx, games.Defaults); err != nil {
		return nil, err
	}
	a.Lobbies = lobby.New(lobby.Options{Store: store, Games: a.Games, Users: userModels, Emitter: a.Emitter,
		Events: a.Bus, Logger: log, IdleTimeout: cfg.LobbyIdleTimeout, ActiveTimeout: cfg.LobbyActiveTimeout})
	// Crash recovery (faults helper): the embedded store is written by this process alone, so at
	// start-up nothing is in flight and what a killed predecessor left half-done can be finished now
	// instead of after the services' grace periods (1 min for seats, MATCH claim timeout for requests).
	if store.Embedded() {
		if n, err := a.Lobbies.ReleaseStaleSeats(ctx, 0); err != nil {
			return nil, fmt.Errorf("releasing stale lobby seats: %w", err)
		} else if n > 0 {
			log.Warn("released lobby seats left by an interrupted write", "seats", n)
		}
	}
	a.unsub = append(a.unsub, a.Lobbies.StartSweeper())

	// Matchmaking (matchmaking helper): matches become lobbies through the lobby service; the matcher
	// ticks until closeResources stops it (before the store closes).
	// Cluster (cluster helper): a Redis lease runs one round per queue across nodes; nil = LocalCoordinator.
	var coord matchmaking.Coordinator
	if a.redis != nil {
		coord = redislease.New(a.redis, redislease.Options{Node: nodeID, Logger: log})
	}
	a.Matchmaking, err = matchmaking.New(matchmaking.Options{Store: store, Games: a.Games, Coordinator: coord,
		Lobbies: matchmaking.FromLobbyService(a.Lobbies), Emitter: a.Emitter, Events: a.Bus, Logger: log,
		Config: matchmaking.Config{Tick: cfg.MatchTick, StatusInterval: cfg.MatchStatusInterval,
			MaxSearchTime: cfg.MatchMaxSearch, Levels: cfg.MatchLevels, Regions: cfg.MatchRegions}})
	if err != nil {
		return nil, err
	}
	if store.Embedded() { // see the crash recovery of the lobbies above
		if n, err := a.Matchmaking.RecoverAfterCrash(ctx); err != nil {
			return nil, fmt.Errorf("recovering match requests: %w", err)
		} else if n > 0 {
			log.Warn("recovered match requests left by an interrupted round", "requests", n)
		}
	}
	a.unsub = append(a.unsub, a.Matchmaking.Background())

	// Chat (chat helper): lobby chat access reads the lobbies the lobby service writes; "is the recipient in
	// the chat room" asks the namespace (cluster-wide through the adapter); unread notifications come from
	// chat.message.sent.
	a.Chat = chat.New(chat.Options{Store: store, Lobbies: chat.NewModelLobbies(store), Emitter: a.Emitter,
		Rooms: socket.RoomUsers(nsp), Notifier: a.Notifications, Events: a.Bus,
		Config: chat.Config{MaxContentLen: cfg.ChatMaxContent}, Logger: log})
	a.unsub = append(a.unsub, a.Chat.Subscribe(a.Bus))

	// Socket handlers of the main namespace.
	features := []socket.Feature{a.countSockets}
	features = append(features, socket.Lobby(a.Lobbies)) // lobby:join/subscribe/leave/ready/kick (lobby helper)
	// chat:join/leave/message/typing/read (chat helper)
	features = append(features, socket.Chat(socket.ChatOptions{Service: a.Chat,
		MessageLimit:   ratelimit.New(cfg.ChatMessageLimit, cfg.ChatMessageWindow),
		TypingLimit:    ratelimit.New(cfg.ChatTypingLimit, cfg.ChatTypingWindow),
		MaxJoinedChats: cfg.ChatMaxJoined}))
	features = append(features, socket.Matchmaking(a.Matchmaking)) // matchmaking:subscribe/unsubscribe/cancel
	// A recovered socket gets a fresh notification:count (none was sent while no socket of the user was there).
	features = append(features, socket.NotificationCount(a.Notifications))
	// ── HOOK: feature socket handlers (chat, lobby, matchmaking — issue 4) ──────────────────────────
	// features = append(features, chat.Register(...), lobby.Register(...), matchmaking.Register(...))
	// ────────────────────────────────────────────────────────────────────────────────────────────────
	socket.Register(nsp, socket.Options{Tokens: a.Auth, Users: userModels, Presence: a.Presence,
		Features: features, Observer: a.observeSocketEvent, Logger: log, Admission: a.Admission,
		OnEmit: func(event string) { a.Metrics.EventsOut.With(event).Inc() },
		// Rooms a recovered socket may rejoin: one check per feature that joins rooms (cluster helper).
		RecoveryChecks: []socket.RoomCheck{socket.LobbyRoomCheck(a.Lobbies), socket.ChatRoomCheck(a.Chat),
			socket.MatchRoomCheck(a.Matchmaking)}})
	// A suspended or banned user's sockets are disconnected at once, on every node (users.SetAccountStatus),
	// and within Config.AccountSweepInterval when the change reached the store without an event.
	a.unsub = append(a.unsub, socket.DisconnectOnAccountChange(a.Bus, nsp, log))
	if every := cfg.AccountSweepInterval; every >= 0 {
		if every == 0 {
			every = defaultAccountSweep
		}
		a.unsub = append(a.unsub, socket.SweepInactiveAccounts(nsp, userModels, every, log))
	}

	// REST.
	ready := []rest.ReadyCheck{{Name: "store", Check: a.Store.Ping}}
	if a.redis != nil {
		ready = append(ready, rest.ReadyCheck{Name: "redis", Check: func(ctx context.Context) error {
			return a.redis.Ping(ctx).Err()
		}})
		// Cluster: not ready while the adapter's subscriber is down (broadcasts would not reach other nodes).
		ready = append(ready, rest.ReadyCheck{Name: "redis-adapter", Check: a.cluster.Check})
	}
	a.API = rest.New(rest.Options{Auth: a.Auth, Store: store, Metrics: a.Metrics, Logger: log,
		BodyLimit: cfg.BodyLimit, CORSOrigins: cfg.CORSOrigins, Ready: ready, Draining: a.draining.Load,
		ClientIP: clientIP, Admission: a.Admission})
	rest.RegisterAuth(a.API, a.Auth)
	rest.RegisterUsers(a.API, a.Users)
	rest.RegisterFriends(a.API, a.Friends)
	// ── HOOK: more REST routes (handlers/rest/<feature>.go: RegisterX(api *rest.API, svc)) ─────────────
	rest.RegisterNotifications(a.API, a.Notifications) // GET /notifications, PATCH /:id/read, POST /read-all
	rest.RegisterGames(a.API, a.Games)                 // GET /games (lobby helper)
	rest.RegisterLobbies(a.API, a.Lobbies)             // /lobbies (lobby helper)
	rest.RegisterChats(a.API, a.Chat)                  // /chats (chat helper)
	rest.RegisterMatchmaking(a.API, a.Matchmaking)     // /matchmaking (matchmaking helper)
	if cfg.DebugEndpoints {
		rest.RegisterDebug(a.API.Echo) // /debug/pprof/, POST /debug/gc (loopback only; soak test)
	}
	// rest.RegisterGames / RegisterMatchmaking / RegisterLobbies / RegisterChats (issue 4)
	// ────────────────────────────────────────────────────────────────────────────────────────────────

	mux := http.NewServeMux()
	if cfg.Production() { // only configured origins (and the server's own pages) reach Socket.IO
		mux.Handle("/socket.io/", checkOrigin(cfg.CORSOrigins, a.IO))
	} else {
		mux.Handle("/socket.io/", a.IO)
	}
	// Web client (web helper): GET/HEAD of the built app's files (web/dist, embedded) are served here;
	// everything else, and always /api/, goes on to the API (its routes and JSON 404s are unchanged).
	mux.Handle("/", web.Embedded(a.API))
	a.handler = mux
	ok = true
	return a, nil
}

// defaultAccountSweep is Config.AccountSweepInterval's default: how long a suspension that no event
// announced (socket.SweepInactiveAccounts) may take to reach open sockets.
const defaultAccountSweep = 10 * time.Second

// Handler is the whole HTTP surface (Socket.IO + REST).
func (a *App) Handler() http.Handler { return a.handler }

// Start serves on ln until Shutdown; it returns nil after a graceful shutdown.
func (a *App) Start(ln net.Listener) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errors.New("app: already shut down")
	}
	a.server = &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn)}
	srv := a.server
	a.mu.Unlock()
	a.Log.Info("listening", "addr", ln.Addr().String(), "embeddedStore", a.Store.Embedded())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections, disconnects every socket with reason "server shutting down"
// (presence saves lastActive), waits for in-flight requests, lets queued internal events finish, and
// closes the store — all bounded by ctx. Safe to call more than once.
func (a *App) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	srv := a.server
	a.mu.Unlock()
	a.draining.Store(true)
	a.Log.Info("shutting down")

	var errList []error
	// Budget: sockets get half of the time, in-flight requests up to three quarters, the rest is for
	// queued internal events and the store. Clients that do not answer within their share (a polling
	// client that went away without closing) are cut off: that is expected, not a failed shutdown.
	ioCtx, cancelIO := budget(ctx, 0.5)
	defer cancelIO()
	httpCtx, cancelHTTP := budget(ctx, 0.75)
	defer cancelHTTP()
	// Close the listener first (no new connections), then the sockets: long-polling requests only end
	// when their engine session closes, so http.Server.Shutdown waits for io.Close.
	httpDone := make(chan error, 1)
	if srv != nil {
		go func() { httpDone <- srv.Shutdown(httpCtx) }()
	} else {
		httpDone <- nil
	}
	if err := a.IO.Close(ioCtx); err != nil {
		if ioCtx.Err() != nil && ctx.Err() == nil {
			a.Log.Warn("some Socket.IO clients did not drain in time; their connections were dropped", "err", err)
		} else {
			errList = append(errList, fmt.Errorf("socket.io close: %w", err))
		}
	}
	if err := <-httpDone; err != nil {
		a.Log.Warn("in-flight requests did not finish in time; closing their connections", "err", err)
		_ = srv.Close()
	}
	// Disconnect handlers (presence: offline, lastActive, queued for the store) must have run before
	// closeResources flushes the presence saves and closes the store.
	if !a.waitSocketsGone(httpCtx) {
		a.Log.Warn("socket disconnect handlers still running; closing the store anyway", "sockets", a.sockets.Load())
	}
	errList = append(errList, a.closeResources(ctx)...)
	err := errors.Join(errList...)
	if err != nil {
		a.Log.Error("shutdown incomplete", "err", err)
	} else {
		a.Log.Info("shutdown complete")
	}
	return err
}

// budget derives a context that ends after share of ctx's remaining time (ctx itself without deadline).
func budget(ctx context.Context, share float64) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(float64(time.Until(dl))*share))
}

// closeResources ends the bus and closes the store and Redis client (also used when New fails).
func (a *App) closeResources(ctx context.Context) []error {
	var errList []error
	for _, u := range a.unsub {
		u()
	}
	a.unsub = nil
	if a.redisPresence != nil {
		// Redis unreachable is not a failed shutdown: the other nodes reap this node's sockets (and
		// announce its users offline) once its heartbeat expires.
		if err := a.redisPresence.Close(ctx); err != nil {
			a.Log.Warn("presence: could not remove this node from Redis; other nodes will reap it", "err", err)
		}
	}
	if a.presenceSaves != nil {
		// After the presence service (its Close saves the users it still held), before the store closes;
		// half of what is left, so that the event bus below still gets time when the store is slow.
		sctx, cancel := budget(ctx, 0.5)
		if err := a.presenceSaves.Close(sctx); err != nil {
			errList = append(errList, err)
		}
		cancel()
	}
	if a.Bus != nil {
		if err := a.Bus.Close(ctx); err != nil {
			errList = append(errList, fmt.Errorf("event bus: %w", err))
		}
	}
	if a.cluster != nil {
		_ = a.cluster.Close() // always nil; stops cross-node delivery before the client closes
	}
	if a.redis != nil {
		if err := a.redis.Close(); err != nil {
			errList = append(errList, fmt.Errorf("redis: %w", err))
		}
	}
	if a.Store != nil {
		if err := a.Store.Close(ctx); err != nil {
			errList = append(errList, fmt.Errorf("store: %w", err))
		}
	}
	return errList
}

// registerBusMetrics exports the event bus's journal counters.
func registerBusMetrics(r *metrics.Registry, stats func() events.MemoryStats) {
	for _, c := range []struct {
		name, help string
		read       func(events.MemoryStats) int64
	}{
		{"maoga_events_spilled_total", "Internal event deliveries journaled because their queue was full or shutdown ran out of time.",
			func(s events.MemoryStats) int64 { return s.Spilled }},
		{"maoga_events_retried_total", "Internal event deliveries journaled for another try after their handler failed.",
			func(s events.MemoryStats) int64 { return s.Retried }},
		{"maoga_events_replayed_total", "Internal event deliveries taken from the journal.",
			func(s events.MemoryStats) int64 { return s.Replayed }},
		{"maoga_events_gave_up_total", "Journaled internal event deliveries dropped after their last attempt.",
			func(s events.MemoryStats) int64 { return s.GaveUp }},
		{"maoga_events_dropped_total", "Internal event deliveries lost (queue full and journal failing).",
			func(s events.MemoryStats) int64 { return s.Dropped }},
	} {
		read := c.read
		r.CounterFunc(c.name, c.help, func() float64 { return float64(read(stats())) })
	}
}

// countSockets keeps the connected-sockets gauge.
// Its disconnect handler is registered after the presence one, so when the count is back to zero every
// socket's presence bookkeeping is done (Shutdown waits for that before closing the store).
func (a *App) countSockets(c *socket.Conn) {
	g := a.Metrics.SocketsConnected.With()
	g.Inc()
	a.sockets.Add(1)
	c.Socket.OnDisconnect(func(string) {
		g.Dec()
		a.sockets.Add(-1)
	})
}

// waitSocketsGone waits (bounded by ctx) until every socket's disconnect handlers have run.
func (a *App) waitSocketsGone(ctx context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for a.sockets.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// knownClientEvents are counted by name; anything else a client sends is counted as "unknown" so that
// invented names cannot grow the metric.
var knownClientEvents = map[string]bool{
	"user:status": true, "chat:join": true, "chat:leave": true, "chat:message": true, "chat:typing": true,
	"chat:read": true, "lobby:join": true, "lobby:subscribe": true, "lobby:leave": true, "lobby:ready": true,
	"lobby:kick": true, "matchmaking:subscribe": true, "matchmaking:unsubscribe": true, "matchmaking:cancel": true,
}

func (a *App) observeSocketEvent(event, code string, took time.Duration) {
	if !knownClientEvents[event] {
		event = "unknown"
	}
	a.Metrics.EventsIn.With(event).Inc()
	a.Metrics.HandlerSeconds.With(event).Observe(took.Seconds())
	if code != "" {
		a.Metrics.Errors.With(code, "socket").Inc()
		a.Metrics.EventsOut.With("error").Inc() // the failure is answered with the event `error`
	}
}

// countingEmitter counts the events services send to rooms (maoga_socket_events_out_total).
type countingEmitter struct {
	inner realtime.Emitter
	m     *metrics.App
}

func (e countingEmitter) ToRoom(room string) realtime.Room {
	return countingRoom{inner: e.inner.ToRoom(room), m: e.m}
}

type countingRoom struct {
	inner realtime.Room
	m     *metrics.App
}

func (r countingRoom) Emit(event string, args ...any) error {
	r.m.EventsOut.With(event).Inc()
	return r.inner.Emit(event, args...)
}

// SocketsLeave is not an event: passed through uncounted (lobby kicks use it).
func (r countingRoom) SocketsLeave(rooms ...string) error { return r.inner.SocketsLeave(rooms...) }
