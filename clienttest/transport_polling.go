package clienttest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// pollingTransport is Engine.IO over HTTP long-polling: a GET returns the
// packets the server queued (joined by \x1e, binary as "b"+base64), a POST
// carries ours. POSTs never overlap (the server refuses that).
type pollingTransport struct {
	base    *url.URL // handshake URL without sid
	header  http.Header
	http    *http.Client
	maxSize int64

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc

	sid     string
	pending []enginePacket // packets of the last GET not yet read

	interruptMu sync.Mutex
	getCancel   context.CancelFunc
	interrupted atomic.Bool

	postMu sync.Mutex
	closed atomic.Bool
	seq    atomic.Int64
}

func newPollingTransport(u *url.URL, opts Options) *pollingTransport {
	jar, _ := cookiejar.New(nil) // sticky-session cookies of load balancers
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &pollingTransport{
		base:    u,
		header:  opts.Header,
		http:    &http.Client{Transport: tr, Jar: jar},
		maxSize: opts.MaxMessageSize,
		ctx:     ctx,
		cancel:  cancel,
	}
}

func (t *pollingTransport) name() string { return "polling" }

func (t *pollingTransport) url() string {
	u := *t.base
	q := u.Query()
	if t.sid != "" {
		q.Set("sid", t.sid)
	}
	q.Set("t", strconv.FormatInt(t.seq.Add(1), 36)) // cache buster, as the JS client sends
	u.RawQuery = q.Encode()
	return u.String()
}

func (t *pollingTransport) interrupt() {
	t.interrupted.Store(true)
	t.interruptMu.Lock()
	if t.getCancel != nil {
		t.getCancel()
	}
	t.interruptMu.Unlock()
}

func (t *pollingTransport) read(deadline time.Time) (enginePacket, error) {
	for len(t.pending) == 0 {
		if err := t.poll(deadline); err != nil {
			return enginePacket{}, err
		}
	}
	p := t.pending[0]
	t.pending = t.pending[1:]
	return p, nil
}

// poll does one GET.
func (t *pollingTransport) poll(deadline time.Time) error {
	if t.interrupted.Load() {
		return errors.New("interrupted")
	}
	ctx, cancel := context.WithCancel(t.ctx)
	if !deadline.IsZero() {
		ctx, cancel = context.WithDeadline(t.ctx, deadline)
	}
	defer cancel()
	t.interruptMu.Lock()
	t.getCancel = cancel
	t.interruptMu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(), nil)
	if err != nil {
		return err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	res, err := t.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &timeoutError{err}
		}
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, t.maxSize+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &timeoutError{err}
		}
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("polling GET: %s: %s", res.Status, bytes.TrimSpace(body))
	}
	if int64(len(body)) > t.maxSize {
		return fmt.Errorf("polling payload larger than %d bytes", t.maxSize)
	}
	for _, part := range bytes.Split(body, []byte{0x1e}) {
		if len(part) > 0 && part[0] == 'b' {
			data, err := base64.StdEncoding.DecodeString(string(part[1:]))
			if err != nil {
				return fmt.Errorf("polling: bad base64 packet: %w", err)
			}
			t.pending = append(t.pending, enginePacket{binary: true, data: data})
			continue
		}
		t.pending = append(t.pending, enginePacket{data: part})
	}
	return nil
}

// setSID is called once the open packet told the session id.
func (t *pollingTransport) setSID(sid string) { t.sid = sid }

func (t *pollingTransport) write(pkts ...enginePacket) error {
	if t.closed.Load() {
		return errors.New("polling transport closed")
	}
	var body []byte
	for i, p := range pkts {
		if i > 0 {
			body = append(body, 0x1e)
		}
		if p.binary {
			body = append(body, 'b')
			body = base64.StdEncoding.AppendEncode(body, p.data)
		} else {
			body = append(body, p.data...)
		}
	}
	t.postMu.Lock()
	defer t.postMu.Unlock()
	req, err := http.NewRequestWithContext(t.ctx, http.MethodPost, t.url(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := t.http.Do(req)
	if err != nil {
		return fmt.Errorf("clienttest: polling POST: %w", err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("clienttest: polling POST: %s: %s", res.Status, bytes.TrimSpace(answer))
	}
	return nil
}

func (t *pollingTransport) close(graceful bool) {
	if graceful && !t.closed.Load() && t.sid != "" {
		_ = t.write(textPacket("1"))
	}
	t.closed.Store(true)
	t.cancel()
	t.http.CloseIdleConnections()
}
