package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// API is the REST side of the scenario.
type API struct {
	Base    string
	HTTP    *http.Client
	Timeout time.Duration
}

// NewAPI returns an API client with a connection pool sized for conns concurrent callers.
func NewAPI(base string, conns int, timeout time.Duration) *API {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		IdleConnTimeout: 30 * time.Second}
	return &API{Base: base, HTTP: &http.Client{Transport: tr}, Timeout: timeout}
}

// Answer is one REST answer: the status, the data member of a success, and the error code of a
// failure ("TIMEOUT" when no answer came within the timeout, "TRANSPORT" when the connection failed).
type Answer struct {
	Status  int
	Data    json.RawMessage
	Code    string
	Message string
	Took    time.Duration
}

// Call sends a JSON request with the bearer token.
func (a *API) Call(ctx context.Context, method, path, token string, body any) Answer {
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return Answer{Code: "CLIENT", Message: err.Error()}
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, rd)
	if err != nil {
		return Answer{Code: "CLIENT", Message: err.Error()}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := a.HTTP.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Answer{Code: "TIMEOUT", Message: err.Error()}
		}
		return Answer{Code: "TRANSPORT", Message: err.Error(), Took: time.Since(start)}
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Answer{Code: "TIMEOUT", Message: err.Error()}
		}
		return Answer{Status: res.StatusCode, Code: "TRANSPORT", Message: err.Error(), Took: took}
	}
	ans := Answer{Status: res.StatusCode, Took: took}
	if res.StatusCode == http.StatusNoContent {
		return ans
	}
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *apiError       `json:"error"`
	}
	if err := decodeJSON(raw, &env); err != nil {
		ans.Code, ans.Message = "BAD_BODY", fmt.Sprintf("status %d: %.200s", res.StatusCode, raw)
		return ans
	}
	if res.StatusCode >= 400 || env.Error != nil {
		if env.Error == nil {
			ans.Code, ans.Message = fmt.Sprintf("HTTP_%d", res.StatusCode), string(raw)
		} else {
			ans.Code, ans.Message = env.Error.Code, env.Error.Message
		}
		return ans
	}
	ans.Data = env.Data
	return ans
}

// ackResult decodes a Socket.IO ack envelope {ok, error:{code,message}, ...}.
func ackResult(args []json.RawMessage) (ok bool, code, message string, body json.RawMessage) {
	if len(args) == 0 {
		return false, "BAD_ACK", "ack without arguments", nil
	}
	var env struct {
		OK    bool      `json:"ok"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(args[0], &env); err != nil {
		return false, "BAD_ACK", fmt.Sprintf("%.200s", args[0]), nil
	}
	if env.OK {
		return true, "", "", args[0]
	}
	if env.Error == nil {
		return false, "BAD_ACK", fmt.Sprintf("%.200s", args[0]), nil
	}
	return false, env.Error.Code, env.Error.Message, args[0]
}
