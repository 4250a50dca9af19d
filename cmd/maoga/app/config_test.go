package app

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.DataDir != "./data" || !c.UsingDevSecret || c.JWTSecret != DevJWTSecret ||
		c.JWTTTL != 15*time.Minute || c.MongoURI != "" || c.MongoTimeout != 5*time.Second || c.LogLevel != slog.LevelInfo || c.Addr() != ":8080" {
		t.Fatalf("%+v", c)
	}
}

func TestFromEnvValues(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"PORT": "9000", "HOST": "127.0.0.1", "MONGODB_URI": "mongodb://db:27017", "JWT_SECRET": "0123456789abcdef0123",
		"JWT_TTL": "2m", "REFRESH_TTL": "24h", "BCRYPT_COST": "4", "CORS_ORIGINS": "https://a.example, https://b.example",
		"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "BODY_LIMIT": "2048", "SHUTDOWN_TIMEOUT": "3s",
		"MONGODB_TIMEOUT": "1500ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr() != "127.0.0.1:9000" || c.UsingDevSecret || c.JWTTTL != 2*time.Minute || c.BcryptCost != 4 ||
		len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" || c.LogLevel != slog.LevelDebug ||
		c.LogFormat != "json" || c.BodyLimit != 2048 || c.ShutdownTimeout != 3*time.Second ||
		c.MongoTimeout != 1500*time.Millisecond {
		t.Fatalf("%+v", c)
	}
	c, _ = FromEnv(env(map[string]string{"CORS_ORIGINS": "none"}))
	if len(c.CORSOrigins) != 0 {
		t.Fatalf("CORS none: %v", c.CORSOrigins)
	}
}

func TestFromEnvReportsEveryBadValue(t *testing.T) {
	_, err := FromEnv(env(map[string]string{
		"PORT": "eighty", "JWT_TTL": "-1m", "BCRYPT_COST": "99", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml",
		"JWT_SECRET": "short", "BODY_LIMIT": "1", "MAX_PAYLOAD": "x", "MONGODB_TIMEOUT": "0s",
	}))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"PORT", "JWT_TTL", "BCRYPT_COST", "LOG_LEVEL", "LOG_FORMAT", "JWT_SECRET", "BODY_LIMIT", "MAX_PAYLOAD", "MONGODB_TIMEOUT"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
}

func TestFromEnvLobbyTimeouts(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.LobbyIdleTimeout != 30*time.Minute || c.LobbyActiveTimeout != 6*time.Hour {
		t.Fatalf("defaults: %v %v %v", c.LobbyIdleTimeout, c.LobbyActiveTimeout, err)
	}
	c, err = FromEnv(env(map[string]string{"LOBBY_IDLE_TIMEOUT": "5m", "LOBBY_ACTIVE_TIMEOUT": "off"}))
	if err != nil || c.LobbyIdleTimeout != 5*time.Minute || c.LobbyActiveTimeout >= 0 {
		t.Fatalf("set: %v %v %v", c.LobbyIdleTimeout, c.LobbyActiveTimeout, err)
	}
	if _, err := FromEnv(env(map[string]string{"LOBBY_IDLE_TIMEOUT": "never"})); err == nil ||
		!strings.Contains(err.Error(), "LOBBY_IDLE_TIMEOUT") {
		t.Fatalf("bad value: %v", err)
	}
}

// Scale-out and edge settings (cluster helper).
func TestFromEnvEdge(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.RecoveryMaxDisconnection != 2*time.Minute || c.RedisSharded || c.TrustedProxies != nil ||
		c.LimitConnectionsPerIP != 100 || c.LimitHandshakesPerSecond != 20 || c.LimitHandshakeBurst != 40 ||
		c.LimitRoomsPerSocket != 1000 || c.LimitNamespacesPerClient != 32 {
		t.Fatalf("defaults %+v", c.EdgeConfig)
	}
	c, err = FromEnv(env(map[string]string{
		"RECOVERY_MAX_DISCONNECTION": "30s", "REDIS_SHARDED": "1", "TRUSTED_PROXIES": "10.0.0.0/8, 172.18.0.5",
		"LIMIT_CONNECTIONS_PER_IP": "0", "LIMIT_HANDSHAKES_PER_SECOND": "2.5", "LIMIT_HANDSHAKE_BURST": "3",
		"LIMIT_ROOMS_PER_SOCKET": "7", "LIMIT_NAMESPACES_PER_CLIENT": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RecoveryMaxDisconnection != 30*time.Second || !c.RedisSharded || len(c.TrustedProxies) != 2 ||
		c.TrustedProxies[1].String() != "172.18.0.5/32" || c.LimitConnectionsPerIP != 0 ||
		c.LimitHandshakesPerSecond != 2.5 || c.LimitHandshakeBurst != 3 || c.LimitRoomsPerSocket != 7 ||
		c.LimitNamespacesPerClient != 0 {
		t.Fatalf("values %+v", c.EdgeConfig)
	}
	if c, err := FromEnv(env(map[string]string{"RECOVERY_MAX_DISCONNECTION": "0", "REDIS_SHARDED": "false"})); err != nil ||
		c.RecoveryMaxDisconnection != 0 || c.RedisSharded {
		t.Fatalf("0 disables recovery: %v %+v", err, c.EdgeConfig)
	}
	_, err = FromEnv(env(map[string]string{
		"RECOVERY_MAX_DISCONNECTION": "-1m", "REDIS_SHARDED": "maybe", "TRUSTED_PROXIES": "10.0.0.0/8,nginx",
		"LIMIT_CONNECTIONS_PER_IP": "-1", "LIMIT_HANDSHAKES_PER_SECOND": "NaN", "LIMIT_HANDSHAKE_BURST": "0",
		"LIMIT_ROOMS_PER_SOCKET": "x", "LIMIT_NAMESPACES_PER_CLIENT": "1.5",
	}))
	for _, key := range []string{"RECOVERY_MAX_DISCONNECTION", "REDIS_SHARDED", "TRUSTED_PROXIES", "nginx",
		"LIMIT_CONNECTIONS_PER_IP", "LIMIT_HANDSHAKES_PER_SECOND", "LIMIT_HANDSHAKE_BURST", "LIMIT_ROOMS_PER_SOCKET",
		"LIMIT_NAMESPACES_PER_CLIENT"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
}

// Load shedding (LIMIT_INFLIGHT_*): defaults, values, 0 = off, and every malformed value named.
func TestFromEnvInflightLimit(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.LimitInflightMax != 100 || c.LimitInflightMin != 4 || c.LimitInflightTargetLatency != 300*time.Millisecond ||
		c.LimitInflightQueueWait != 300*time.Millisecond || c.Admission(nil, nil) == nil {
		t.Fatalf("defaults %+v", c.EdgeConfig)
	}
	if l := c.Admission(nil, nil); l.Limit() != 20 || l.Options().Max != 100 || l.Options().Min != 4 {
		t.Fatalf("default limiter: limit %d, %+v", l.Limit(), l.Options())
	}
	c, err = FromEnv(env(map[string]string{"LIMIT_INFLIGHT_MAX": "8", "LIMIT_INFLIGHT_MIN": "2",
		"LIMIT_INFLIGHT_TARGET_LATENCY": "150ms", "LIMIT_INFLIGHT_QUEUE_WAIT": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Admission(nil, nil).Options()
	if o.Max != 8 || o.Min != 2 || o.TargetLatency != 150*time.Millisecond || o.QueueWait >= 0 {
		t.Fatalf("values: %+v", o)
	}
	if c, err := FromEnv(env(map[string]string{"LIMIT_INFLIGHT_MAX": "0"})); err != nil || c.Admission(nil, nil) != nil {
		t.Fatalf("0 turns shedding off: %v", err)
	}
	_, err = FromEnv(env(map[string]string{"LIMIT_INFLIGHT_MAX": "-1", "LIMIT_INFLIGHT_MIN": "0",
		"LIMIT_INFLIGHT_TARGET_LATENCY": "0", "LIMIT_INFLIGHT_QUEUE_WAIT": "soon"}))
	for _, key := range []string{"LIMIT_INFLIGHT_MAX", "LIMIT_INFLIGHT_MIN", "LIMIT_INFLIGHT_TARGET_LATENCY", "LIMIT_INFLIGHT_QUEUE_WAIT"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
	if _, err := FromEnv(env(map[string]string{"LIMIT_INFLIGHT_MAX": "3", "LIMIT_INFLIGHT_MIN": "5"})); err == nil ||
		!strings.Contains(err.Error(), "LIMIT_INFLIGHT_MIN") {
		t.Fatalf("min over max: %v", err)
	}
}
