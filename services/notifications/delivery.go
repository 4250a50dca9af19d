package notifications

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Message is what an outside channel (email, push) delivers.
type Message struct {
	NotificationID string         `json:"id"`
	UserID         string         `json:"userId"`
	Type           string         `json:"type"`
	Title          string         `json:"title"`
	Message        string         `json:"message"`
	Data           map[string]any `json:"data,omitempty"`
	CreatedAt      string         `json:"createdAt"`
}

// EmailSender delivers a notification by email to one address.
type EmailSender interface {
	SendEmail(ctx context.Context, to string, m Message) error
}

// PushSender delivers a notification to the user's devices.
type PushSender interface {
	SendPush(ctx context.Context, m Message) error
}

// ErrNotConfigured marks a channel that has no backend configured: the
// notification's delivery status says failed with this error, never sent.
var ErrNotConfigured = errors.New("not configured")

// SMTPSender sends mail with net/smtp to the server named by an SMTP URL:
//
//	smtp://user:pass@host:port   plain connection, STARTTLS when the server offers it
//	smtps://user:pass@host:port  TLS from the first byte
//
// Credentials are optional; with them AUTH PLAIN is used (net/smtp sends them
// only over TLS or to localhost).
type SMTPSender struct {
	host     string // host:port
	hostname string
	implicit bool
	auth     smtp.Auth
	from     string
	timeout  time.Duration
	// TLSConfig overrides the TLS settings (tests, private CAs). nil = system roots.
	TLSConfig *tls.Config
}

// NewSMTPSender parses rawURL (see SMTPSender) and sends as from.
// timeout bounds one whole delivery (default 15s).
func NewSMTPSender(rawURL, from string, timeout time.Duration) (*SMTPSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	s := &SMTPSender{from: from, timeout: timeout}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.implicit = true
	default:
		return nil, fmt.Errorf("SMTP_URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	s.hostname = u.Hostname()
	if s.hostname == "" {
		return nil, errors.New("SMTP_URL: missing host")
	}
	port := u.Port()
	if port == "" {
		port = "25"
		if s.implicit {
			port = "465"
		}
	}
	s.host = net.JoinHostPort(s.hostname, port)
	if u.User != nil {
		pass, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pass, s.hostname)
	}
	if _, err := mailAddress(from); err != nil {
		return nil, fmt.Errorf("SMTP_FROM: %w", err)
	}
	if s.timeout <= 0 {
		s.timeout = 15 * time.Second
	}
	return s, nil
}

// mailAddress checks an address has no characters that could break the
// SMTP envelope or headers.
func mailAddress(a string) (string, error) {
	if a == "" || strings.ContainsAny(a, "\r\n<>") || !strings.Contains(a, "@") {
		return "", fmt.Errorf("invalid email address %q", a)
	}
	return a, nil
}

// SendEmail implements EmailSender.
func (s *SMTPSender) SendEmail(ctx context.Context, to string, m Message) error {
	if _, err := mailAddress(to); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.host)
	if err != nil {
		return fmt.Errorf("smtp dial %s: %w", s.host, err)
	}
	// net/smtp has no ctx: the deadline bounds every read and write, and a
	// cancelled ctx closes the connection.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	tlsConf := s.tlsConfig()
	if s.implicit {
		conn = tls.Client(conn, tlsConf)
	}
	c, err := smtp.NewClient(conn, s.hostname)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("maoga"); err != nil {
		return fmt.Errorf("smtp hello: %w", err)
	}
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("smtp starttls: %w", err)
			}
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(composeMail(s.from, to, m)); err != nil {
		return fmt.Errorf("smtp write body: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp end of data: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("smtp QUIT: %w", err)
	}
	return nil
}

func (s *SMTPSender) tlsConfig() *tls.Config {
	if s.TLSConfig != nil {
		c := s.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = s.hostname
		}
		return c
	}
	return &tls.Config{ServerName: s.hostname, MinVersion: tls.VersionTLS12}
}

// composeMail builds a plain-text RFC 5322 message. The subject is
// Q-encoded so any title is a valid header; the body lines end in CRLF.
func composeMail(from, to string, m Message) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Title))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@maoga>\r\n", m.NotificationID)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	body := strings.ReplaceAll(m.Message, "\r\n", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return b.Bytes()
}

// WebhookPush posts each push notification as JSON to a URL (a push
// gateway). Any 2xx answer counts as sent.
type WebhookPush struct {
	url    string
	client *http.Client
}

// NewWebhookPush checks rawURL (http or https) and posts there with timeout
// (default 10s).
func NewWebhookPush(rawURL string, timeout time.Duration) (*WebhookPush, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("PUSH_WEBHOOK_URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("PUSH_WEBHOOK_URL: want an http(s) URL, got %q", rawURL)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &WebhookPush{url: u.String(), client: &http.Client{Timeout: timeout}}, nil
}

// PushBody is the JSON the webhook receives.
type PushBody struct {
	UserID       string  `json:"userId"`
	Notification Message `json:"notification"`
}

// SendPush implements PushSender.
func (w *WebhookPush) SendPush(ctx context.Context, m Message) error {
	body, err := json.Marshal(PushBody{UserID: m.UserID, Notification: m})
	if err != nil {
		return fmt.Errorf("push: marshal: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("push webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("push webhook answered %s", resp.Status)
	}
	return nil
}
