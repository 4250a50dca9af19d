package notifications

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/services/notifications/notifytest"
)

var testMsg = Message{
	NotificationID: "n1", UserID: "u1", Type: "friend_request",
	Title: "Friend request from Ünal", Message: "Ünal wants to be your friend.\nSay yes!",
	Data: map[string]any{"friendshipId": "f1"}, CreatedAt: "2026-11-22T01:00:00.000Z",
}

func TestSMTPSenderDeliversWithAuth(t *testing.T) {
	srv := notifytest.NewSMTPServer(t, "mailer", "s3cret")
	s, err := NewSMTPSender(srv.URL(), "no-reply@maoga.test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendEmail(context.Background(), "ann@example.com", testMsg); err != nil {
		t.Fatal(err)
	}
	m := srv.WaitMail(t, 5*time.Second)
	if m.AuthUser != "mailer" || m.From != "no-reply@maoga.test" || len(m.To) != 1 || m.To[0] != "ann@example.com" {
		t.Fatalf("envelope = %+v", m)
	}
	for _, want := range []string{
		"To: ann@example.com\r\n",
		"Subject: =?utf-8?q?Friend_request_from_=C3=9Cnal?=\r\n",
		"\r\n\r\nÜnal wants to be your friend.\r\nSay yes!\r\n",
	} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Data)
		}
	}
}

func TestSMTPSenderErrors(t *testing.T) {
	srv := notifytest.NewSMTPServer(t, "mailer", "s3cret")
	bad, err := NewSMTPSender("smtp://mailer:wrong@"+srv.Addr(), "no-reply@maoga.test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.SendEmail(context.Background(), "ann@example.com", testMsg); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("wrong password: %v", err)
	}
	srv.RejectRcpt = "ghost"
	good, _ := NewSMTPSender(srv.URL(), "no-reply@maoga.test", 5*time.Second)
	if err := good.SendEmail(context.Background(), "ghost@example.com", testMsg); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("rejected recipient: %v", err)
	}
	if err := good.SendEmail(context.Background(), "evil@example.com>\r\nRCPT TO:<x@y", testMsg); err == nil {
		t.Fatal("header injection in recipient accepted")
	}
	if len(srv.Mails()) != 0 {
		t.Fatalf("mails accepted: %+v", srv.Mails())
	}
	// Nothing listens: a dial error, bounded by the timeout.
	dead, _ := NewSMTPSender("smtp://127.0.0.1:1", "no-reply@maoga.test", time.Second)
	if err := dead.SendEmail(context.Background(), "ann@example.com", testMsg); err == nil {
		t.Fatal("dead server: no error")
	}
	for _, u := range []string{"http://x", "smtp://", "::"} {
		if _, err := NewSMTPSender(u, "a@b", 0); err == nil {
			t.Errorf("SMTP URL %q accepted", u)
		}
	}
	if _, err := NewSMTPSender("smtp://h:25", "not-an-address", 0); err == nil {
		t.Error("bad from accepted")
	}
}

func TestSMTPSenderTimesOutOnSilentServer(t *testing.T) {
	// A listener that accepts and never greets.
	srv := notifytest.NewSilentListener(t)
	s, _ := NewSMTPSender("smtp://"+srv, "no-reply@maoga.test", 200*time.Millisecond)
	start := time.Now()
	if err := s.SendEmail(context.Background(), "ann@example.com", testMsg); err == nil {
		t.Fatal("silent server: no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("send took %v despite a 200ms timeout", d)
	}
}

func TestWebhookPush(t *testing.T) {
	hook := notifytest.NewWebhook(t, http.StatusAccepted)
	p, err := NewWebhookPush(hook.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendPush(context.Background(), testMsg); err != nil {
		t.Fatal(err)
	}
	r := hook.WaitRequest(t, 5*time.Second)
	if r.Method != http.MethodPost || r.ContentType != "application/json" {
		t.Fatalf("request = %+v", r)
	}
	var body PushBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.UserID != "u1" || body.Notification.Title != testMsg.Title || body.Notification.Data["friendshipId"] != "f1" {
		t.Fatalf("body = %s", r.Body)
	}

	failing := notifytest.NewWebhook(t, http.StatusInternalServerError)
	p2, _ := NewWebhookPush(failing.URL, 5*time.Second)
	if err := p2.SendPush(context.Background(), testMsg); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("500 answer: %v", err)
	}
	for _, u := range []string{"ftp://x", "http://", "nope"} {
		if _, err := NewWebhookPush(u, 0); err == nil {
			t.Errorf("webhook URL %q accepted", u)
		}
	}
}
