package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/maoga/maoga/handlers/rest"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/metrics"
	"github.com/maoga/maoga/services/notifications"
	"github.com/maoga/maoga/services/realtime"
)

// notifEnv is the REST API with the notification routes on a free port.
type notifEnv struct {
	t    *testing.T
	url  string
	auth *auth.Service
	svc  *notifications.Service
	rec  *realtime.Recorder
}

func newNotifEnv(t *testing.T) *notifEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := models.Open(ctx, models.Config{DataDir: t.TempDir(), Database: "rest_notifications", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	authSvc, err := auth.New(store, auth.Config{Secret: []byte("rest-notif-secret"), BcryptCost: bcrypt.MinCost}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	rec := &realtime.Recorder{}
	svc := notifications.New(notifications.Options{Store: models.NewNotifications(store), Users: models.NewUsers(store),
		Emitter: rec, Logger: log})
	api := rest.New(rest.Options{Auth: authSvc, Store: store, Metrics: metrics.NewApp(), Logger: log})
	rest.RegisterNotifications(api, svc)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &notifEnv{t: t, url: srv.URL, auth: authSvc, svc: svc, rec: rec}
}

type notifUser struct{ id, token string }

func (e *notifEnv) user(name string) notifUser {
	e.t.Helper()
	s, err := e.auth.Register(context.Background(), auth.RegisterInput{Username: name, Email: name + "@example.com", Password: "password123"})
	if err != nil {
		e.t.Fatal(err)
	}
	return notifUser{id: s.User.ID.Hex(), token: s.AccessToken}
}

func (e *notifEnv) notify(u notifUser, n int) []string {
	e.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		v, err := e.svc.Create(context.Background(), notifications.Draft{UserID: u.id, Type: "test", Title: "t", Message: "m"})
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	return ids
}

// do sends a request and returns the status and the decoded envelope.
func (e *notifEnv) do(method, path, token string, body io.Reader) (int, map[string]json.RawMessage) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]json.RawMessage
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &env); err != nil {
		e.t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
	}
	return resp.StatusCode, env
}

func errorCode(t *testing.T, env map[string]json.RawMessage) string {
	t.Helper()
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(env["error"], &e); err != nil || e.Message == "" {
		t.Fatalf("no error envelope: %v %s", err, env["error"])
	}
	return e.Code
}

func TestNotificationRoutes(t *testing.T) {
	e := newNotifEnv(t)
	ann, bob := e.user("ann_rest"), e.user("bob_rest")
	ids := e.notify(ann, 5)
	bobIDs := e.notify(bob, 1)

	t.Run("list pages with a cursor", func(t *testing.T) {
		var got []string
		path := "/api/notifications?limit=2"
		for i := 0; i < 5; i++ {
			st, env := e.do("GET", path, ann.token, nil)
			if st != 200 {
				t.Fatalf("status %d: %s", st, env["error"])
			}
			var page []struct {
				ID       string `json:"id"`
				Read     bool   `json:"read"`
				Status   string `json:"status"`
				Delivery map[string]struct {
					Status string `json:"status"`
				} `json:"delivery"`
			}
			if err := json.Unmarshal(env["data"], &page); err != nil {
				t.Fatal(err)
			}
			for _, n := range page {
				if n.Read || n.Status != "unread" || n.Delivery["inApp"].Status != "sent" {
					t.Fatalf("item %+v", n)
				}
				got = append(got, n.ID)
			}
			if string(env["nextCursor"]) == "null" {
				break
			}
			var cur string
			_ = json.Unmarshal(env["nextCursor"], &cur)
			path = "/api/notifications?limit=2&cursor=" + cur
		}
		want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paged %v want %v", got, want)
		}
	})

	t.Run("read one sends a count and filters", func(t *testing.T) {
		e.rec.Reset()
		st, env := e.do("PATCH", "/api/notifications/"+ids[2]+"/read", ann.token, nil)
		if st != 200 {
			t.Fatalf("status %d %s", st, env["error"])
		}
		var n struct {
			ID     string  `json:"id"`
			Read   bool    `json:"read"`
			ReadAt *string `json:"readAt"`
		}
		_ = json.Unmarshal(env["data"], &n)
		if n.ID != ids[2] || !n.Read || n.ReadAt == nil {
			t.Fatalf("read answer %s", env["data"])
		}
		evs := e.rec.Events()
		if len(evs) != 1 || evs[0].Event != "notification:count" || evs[0].Room != "user:"+ann.id ||
			evs[0].Args[0] != (notifications.Count{Total: 5, Unread: 4, UnreadCount: 4}) {
			t.Fatalf("emitted %+v", evs)
		}
		st, env = e.do("GET", "/api/notifications?status=unread", ann.token, nil)
		var page []struct{ ID string }
		_ = json.Unmarshal(env["data"], &page)
		if st != 200 || len(page) != 4 {
			t.Fatalf("unread list: %d %d", st, len(page))
		}
		for _, p := range page {
			if p.ID == ids[2] {
				t.Fatal("read notification listed as unread")
			}
		}
	})

	t.Run("other users' notifications do not exist", func(t *testing.T) {
		e.rec.Reset()
		for _, id := range []string{bobIDs[0], "not-an-id", bson.NewObjectID().Hex()} {
			st, env := e.do("PATCH", "/api/notifications/"+id+"/read", ann.token, nil)
			if st != 404 || errorCode(t, env) != "NOT_FOUND" {
				t.Fatalf("PATCH %s: %d %s", id, st, env["error"])
			}
		}
		if n := len(e.rec.Events()); n != 0 {
			t.Fatalf("refused reads emitted %d events", n)
		}
		c, _ := e.svc.Counts(context.Background(), bob.id)
		if c.Unread != 1 {
			t.Fatal("ann's attempt marked bob's notification read")
		}
		st, env := e.do("GET", "/api/notifications", bob.token, nil)
		var page []struct{ ID string }
		_ = json.Unmarshal(env["data"], &page)
		if st != 200 || len(page) != 1 || page[0].ID != bobIDs[0] {
			t.Fatalf("bob's list: %d %s", st, env["data"])
		}
	})

	t.Run("read all", func(t *testing.T) {
		e.rec.Reset()
		st, env := e.do("POST", "/api/notifications/read-all", ann.token, nil)
		if st != 200 || string(env["data"]) != `{"total":5,"unread":0,"unreadCount":0}` {
			t.Fatalf("read-all: %d %s %s", st, env["data"], env["error"])
		}
		evs := e.rec.Events()
		if len(evs) != 1 || evs[0].Event != "notification:count" {
			t.Fatalf("emitted %+v", evs)
		}
		if c, _ := e.svc.Counts(context.Background(), bob.id); c.Unread != 1 {
			t.Fatal("read-all of ann touched bob's")
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, q := range []string{"status=new", "limit=0", "limit=101", "limit=-1", "limit=ten", "cursor=garbage"} {
			st, env := e.do("GET", "/api/notifications?"+q, ann.token, nil)
			if st != 400 || errorCode(t, env) != "VALIDATION_ERROR" {
				t.Errorf("?%s: %d %s", q, st, env["error"])
			}
		}
		st, env := e.do("GET", "/api/notifications?limit=100", ann.token, nil)
		if st != 200 {
			t.Fatalf("limit=100: %d %s", st, env["error"])
		}
	})

	t.Run("authentication", func(t *testing.T) {
		for _, tok := range []string{"", "garbage"} {
			for _, r := range []struct{ m, p string }{
				{"GET", "/api/notifications"}, {"PATCH", "/api/notifications/" + ids[0] + "/read"}, {"POST", "/api/notifications/read-all"},
			} {
				st, env := e.do(r.m, r.p, tok, bytes.NewReader(nil))
				if st != 401 || errorCode(t, env) != "UNAUTHORIZED" {
					t.Errorf("%s %s token %q: %d %s", r.m, r.p, tok, st, env["error"])
				}
			}
		}
	})
}
