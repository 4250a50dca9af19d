package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// pollClient runs Socket.IO sessions over HTTP long-polling (the churn-polling scenario): handshake,
// CONNECT, its answer, and a close packet, on keep-alive connections.
type pollClient struct {
	base string
	hc   *http.Client
}

func newPollClient(base string, conns int) *pollClient {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: 30 * time.Second}
	return &pollClient{base: base + "/socket.io/?EIO=4&transport=polling", hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (p *pollClient) do(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b, nil
}

// cycle opens one session, joins "/", waits for the CONNECT answer and closes the session.
func (p *pollClient) cycle(ctx context.Context) error {
	b, err := p.do(ctx, http.MethodGet, p.base, nil)
	if err != nil {
		return err
	}
	if len(b) == 0 || b[0] != '0' {
		return fmt.Errorf("polling: expected open packet, got %q", b)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(b[1:], &open); err != nil || open.SID == "" {
		return fmt.Errorf("polling: bad open packet %q", b)
	}
	u := p.base + "&sid=" + open.SID
	if _, err := p.do(ctx, http.MethodPost, u, []byte("40")); err != nil {
		return err
	}
	for i := 0; i < 3; i++ { // the answer may be preceded by nothing else; bounded anyway
		b, err = p.do(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		for _, pkt := range strings.Split(string(b), "\x1e") {
			if strings.HasPrefix(pkt, "40") {
				_, err := p.do(ctx, http.MethodPost, u, []byte("1"))
				return err
			}
			if strings.HasPrefix(pkt, "44") {
				return fmt.Errorf("polling: connect error %s", pkt)
			}
		}
	}
	return fmt.Errorf("polling: no CONNECT answer")
}
