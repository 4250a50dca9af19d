package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/events/redisbus"
	"github.com/maoga/maoga/services/users"
)

// AdminUsage is the help text of `maoga admin`.
const AdminUsage = `usage: maoga admin set-status <username|email|id> <active|suspended|banned> [reason...]

Changes a user's account status in the store the server uses (MONGODB_URI, or the embedded store
in DATA_DIR). suspended and banned take effect at once: the user's refresh tokens are revoked, and
with REDIS_URL set every running node is told to disconnect the user's sockets at once (without
Redis a running server refuses the user's next request or handshake, and disconnects the user's
sockets at its next account sweep, within 10 s).`

// Admin runs `maoga admin <args>` with the server's configuration and returns the exit code: 0 done,
// 1 failed (unknown user, store or Redis unreachable), 2 usage error.
func Admin(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	if log == nil {
		log = cfg.NewLogger()
	}
	if len(args) < 3 || args[0] != "set-status" {
		fmt.Fprintln(stderr, AdminUsage)
		return 2
	}
	ref, status, reason := args[1], args[2], strings.TrimSpace(strings.Join(args[3:], " "))
	if !models.ValidAccountStatus(status) {
		fmt.Fprintf(stderr, "maoga admin: status %q: want active, suspended or banned\n\n%s\n", status, AdminUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	store, err := models.Open(ctx, models.Config{URI: cfg.MongoURI, Database: cfg.MongoDatabase,
		DataDir: cfg.DataDir, Logger: log.With("component", "store")})
	if err != nil {
		fmt.Fprintln(stderr, "maoga admin: opening the store:", err)
		return 1
	}
	defer func() { _ = store.Close(context.Background()) }()

	var announcer *clusterAnnouncer
	opts := users.Options{Store: store, Logger: log}
	if cfg.RedisURL != "" {
		ropt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			fmt.Fprintln(stderr, "maoga admin: REDIS_URL:", err)
			return 2
		}
		client := redis.NewClient(ropt)
		defer client.Close()
		announcer = &clusterAnnouncer{client: client}
		opts.Events = announcer
	}
	u, err := findUser(ctx, models.NewUsers(store), ref)
	if err != nil {
		fmt.Fprintf(stderr, "maoga admin: user %q: %s\n", ref, errs.From(err).Message)
		return 1
	}
	before := u.AccountStatus
	if _, err := users.New(opts).SetAccountStatus(ctx, u.ID.Hex(), status, reason); err != nil {
		e := errs.From(err)
		if e.Code == errs.CodeInternal {
			fmt.Fprintln(stderr, "maoga admin:", err)
		} else {
			fmt.Fprintln(stderr, "maoga admin:", e.Message)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s (%s): account %s -> %s\n", u.Username, u.ID.Hex(), before, status)
	switch {
	case announcer != nil:
		fmt.Fprintf(stdout, "announced to %d running node(s) through Redis\n", announcer.receivers)
	case status != models.AccountActive:
		fmt.Fprintln(stdout, "no REDIS_URL: a running server refuses the user's next request at once and disconnects the user's sockets at its next account sweep (within 10 s)")
	}
	return 0
}

// findUser resolves an id, a username or an email.
func findUser(ctx context.Context, us *models.Users, ref string) (*models.User, error) {
	if id, ok := models.ParseID(ref); ok {
		u, err := us.ByID(ctx, id)
		if err == nil || !errs.Is(err, errs.CodeNotFound) {
			return u, err
		}
	}
	return us.ByLogin(ctx, ref)
}

// clusterAnnouncer is the events.Publisher of the admin command: it publishes straight to the
// cluster's Redis channel and remembers how many nodes received it.
type clusterAnnouncer struct {
	client    *redis.Client
	receivers int64
}

func (p *clusterAnnouncer) Publish(ctx context.Context, e events.Event) error {
	n, err := redisbus.Announce(ctx, p.client, redisbus.Options{Origin: "maoga-admin-" + redisbus.NodeID()}, e)
	p.receivers = n
	return err
}
