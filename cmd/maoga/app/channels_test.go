package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/services/chat"
	"github.com/maoga/maoga/services/notifications"
	"github.com/maoga/maoga/services/notifications/notifytest"
)

// With SMTP_URL and PUSH_WEBHOOK_URL set, the platform's notifications go out on the outside channels
// of notifications.DefaultChannels: the welcome by mail, a friend request by push and mail; each
// channel's status is stored and shown by GET /api/notifications.
func TestNotificationChannelsEndToEnd(t *testing.T) {
	smtpd := notifytest.NewSMTPServer(t, "mailer", "s3cret")
	hook := notifytest.NewWebhook(t, http.StatusOK)
	cfg := testConfig(t.TempDir())
	cfg.SMTPURL, cfg.SMTPFrom, cfg.PushWebhookURL = smtpd.URL(), "noreply@maoga.test", hook.URL
	a, err := app.New(context.Background(), cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Start(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	base := "http://" + ln.Addr().String()
	post := func(path, token string, body any) reply {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(js))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return send(t, req)
	}
	reg := func(name string) (id, token string) {
		t.Helper()
		r := post("/api/auth/register", "", map[string]any{"username": name, "email": name + "@example.com", "password": "password123"})
		if r.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.Status, r.Raw)
		}
		d := r.data()
		return d["user"].(map[string]any)["id"].(string), d["accessToken"].(string)
	}
	alice, aliceToken := reg(uniqueName("chan_a"))
	_, bobToken := reg(uniqueName("chan_b"))

	// Two welcome mails, none pushed.
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		m := smtpd.WaitMail(t, 10*time.Second)
		if m.AuthUser != "mailer" || m.From != "noreply@maoga.test" || len(m.To) != 1 || !strings.Contains(m.Data, "welcome") && !strings.Contains(m.Data, "Welcome") {
			t.Fatalf("welcome mail: %+v", m)
		}
		got[m.To[0]] = true
	}
	if len(got) != 2 {
		t.Fatalf("welcome mails to %v", got)
	}
	if n := len(hook.Requests()); n != 0 {
		t.Fatalf("the welcome was pushed %d times; its channels are inApp and email", n)
	}

	// A friend request: push and mail to alice.
	if r := post("/api/friends/requests", bobToken, map[string]any{"userId": alice}); r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("friend request: %d %s", r.Status, r.Raw)
	}
	push := hook.WaitRequest(t, 10*time.Second)
	if !strings.Contains(string(push.Body), alice) || !strings.Contains(string(push.Body), "friend") {
		t.Fatalf("push body: %s", push.Body)
	}
	mail := smtpd.WaitMail(t, 10*time.Second)
	if len(mail.To) != 1 || !strings.HasPrefix(mail.To[0], "chan_a") {
		t.Fatalf("friend request mail to %v", mail.To)
	}

	// The stored delivery states, as the REST list shows them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", base+"/api/notifications", nil)
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		var body struct {
			Data []notifications.View `json:"data"`
		}
		r := send(t, req)
		if err := json.Unmarshal(r.Raw, &body); err != nil {
			t.Fatal(err)
		}
		var fr *notifications.View
		for i := range body.Data {
			if body.Data[i].Type == notifications.TypeFriendRequest {
				fr = &body.Data[i]
			}
		}
		if fr != nil && fr.Delivery["push"].Status == "sent" && fr.Delivery["email"].Status == "sent" && fr.Delivery["inApp"].Status == "sent" {
			if strings.Join(fr.Channels, ",") != "inApp,push,email" {
				t.Fatalf("channels %v", fr.Channels)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("friend request delivery states: %s", r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The chat service's notification type is the one the channel policy names.
func TestChatNotificationTypeHasChannels(t *testing.T) {
	if chat.NotificationType != notifications.TypeChatMessage {
		t.Fatalf("chat notifications are %q, the policy knows %q", chat.NotificationType, notifications.TypeChatMessage)
	}
}

// Without SMTP or a push webhook, policy keeps in-app only: no failed delivery recorded every time.
func TestConfiguredChannels(t *testing.T) {
	p := notifications.ConfiguredChannels(notifications.DefaultChannels, false, false)
	for typ, chans := range p {
		if len(chans) != 1 || chans[0] != "inApp" {
			t.Fatalf("%s: %v", typ, chans)
		}
	}
	p = notifications.ConfiguredChannels(notifications.DefaultChannels, true, false)
	if strings.Join(p[notifications.TypeFriendRequest], ",") != "inApp,email" {
		t.Fatalf("friend request with mail only: %v", p[notifications.TypeFriendRequest])
	}
}
