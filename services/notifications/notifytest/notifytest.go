// Package notifytest has fake delivery backends for tests: an SMTP server
// that speaks enough of RFC 5321 for net/smtp, and a push webhook. Both record
// what they receive. Test code only.
package notifytest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mail is one message the fake SMTP server accepted.
type Mail struct {
	AuthUser string // "" without AUTH
	From     string
	To       []string
	Data     string // the message as sent, dot-unstuffed, CRLF line ends
}

// SMTPServer is a fake SMTP server on 127.0.0.1.
type SMTPServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	user string
	pass string

	mu    sync.Mutex
	mails []Mail
	// RejectRcpt, when set, answers RCPT TO with 550 for addresses containing it.
	RejectRcpt string
	mailCh     chan Mail
}

// NewSMTPServer starts a fake server; with user != "" it advertises AUTH
// PLAIN and requires those credentials before MAIL. Closed at test cleanup.
func NewSMTPServer(t testing.TB, user, pass string) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPServer{ln: ln, user: user, pass: pass, mailCh: make(chan Mail, 100)}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Addr is host:port.
func (s *SMTPServer) Addr() string { return s.ln.Addr().String() }

// URL is an SMTP_URL for this server (with credentials when it has some).
func (s *SMTPServer) URL() string {
	if s.user != "" {
		return fmt.Sprintf("smtp://%s:%s@%s", s.user, s.pass, s.Addr())
	}
	return "smtp://" + s.Addr()
}

// Mails returns what was accepted so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// WaitMail returns the next accepted mail or fails the test after d.
func (s *SMTPServer) WaitMail(t testing.TB, d time.Duration) Mail {
	t.Helper()
	select {
	case m := <-s.mailCh:
		return m
	case <-time.After(d):
		t.Fatalf("no mail arrived within %v", d)
		return Mail{}
	}
}

func (s *SMTPServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			s.session(c)
		}()
	}
}

func (s *SMTPServer) session(c net.Conn) {
	r := bufio.NewReader(c)
	reply := func(format string, a ...any) { fmt.Fprintf(c, format+"\r\n", a...) }
	reply("220 fake.smtp ESMTP ready")
	var cur Mail
	authed := s.user == ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-fake.smtp greets %s", arg)
			if s.user != "" {
				reply("250-AUTH PLAIN")
			}
			reply("250 8BITMIME")
		case "HELO":
			reply("250 fake.smtp")
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				reply("504 unsupported mechanism")
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				reply("535 authentication failed")
				continue
			}
			authed = true
			cur.AuthUser = parts[1]
			reply("235 ok")
		case "MAIL":
			if !authed {
				reply("530 authentication required")
				continue
			}
			cur.From = addrArg(arg)
			cur.To = nil
			reply("250 ok")
		case "RCPT":
			to := addrArg(arg)
			if s.RejectRcpt != "" && strings.Contains(to, s.RejectRcpt) {
				reply("550 no such user")
				continue
			}
			cur.To = append(cur.To, to)
			reply("250 ok")
		case "DATA":
			reply("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = b.String()
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			select {
			case s.mailCh <- cur:
			default: // nobody waits for this many: Mails still has it
			}
			cur = Mail{AuthUser: cur.AuthUser}
			reply("250 queued")
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// addrArg extracts the address of "FROM:<a@b> SIZE=1" or "TO:<a@b>".
func addrArg(arg string) string {
	if i := strings.IndexByte(arg, '<'); i >= 0 {
		if j := strings.IndexByte(arg[i:], '>'); j >= 0 {
			return arg[i+1 : i+j]
		}
	}
	_, a, _ := strings.Cut(arg, ":")
	return strings.TrimSpace(a)
}

// Request is one POST the fake webhook received.
type Request struct {
	Method      string
	ContentType string
	Body        json.RawMessage
}

// Webhook is a fake push gateway answering Status (default 200).
type Webhook struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []Request
	status int
	ch     chan Request
}

// NewWebhook starts a fake webhook answering status; closed at cleanup.
func NewWebhook(t testing.TB, status int) *Webhook {
	t.Helper()
	if status == 0 {
		status = http.StatusOK
	}
	w := &Webhook{status: status, ch: make(chan Request, 100)}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := Request{Method: r.Method, ContentType: r.Header.Get("Content-Type"), Body: body}
		w.mu.Lock()
		w.reqs = append(w.reqs, req)
		w.mu.Unlock()
		select {
		case w.ch <- req:
		default: // nobody waits for this many: Requests still has it
		}
		rw.WriteHeader(w.status)
	}))
	t.Cleanup(w.Server.Close)
	return w
}

// Requests returns what was received so far.
func (w *Webhook) Requests() []Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Request(nil), w.reqs...)
}

// WaitRequest returns the next request or fails the test after d.
func (w *Webhook) WaitRequest(t testing.TB, d time.Duration) Request {
	t.Helper()
	select {
	case r := <-w.ch:
		return r
	case <-time.After(d):
		t.Fatalf("no webhook request within %v", d)
		return Request{}
	}
}

// NewSilentListener accepts connections and never answers (to test
// timeouts). It returns host:port; closed at cleanup.
func NewSilentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}
