package adapter

import (
	"encoding/json"
	"strings"
)

// MarshalJSON renders the handshake the way Node's socket.handshake serializes: header names in lower
// case with string values (repeated headers joined by ", "), query values as strings (arrays when
// repeated).
func (h Handshake) MarshalJSON() ([]byte, error) {
	headers := make(map[string]any, len(h.Headers))
	for k, v := range h.Headers {
		k = strings.ToLower(k)
		if k == "set-cookie" {
			headers[k] = v
			continue
		}
		headers[k] = strings.Join(v, ", ")
	}
	query := make(map[string]any, len(h.Query))
	for k, v := range h.Query {
		if len(v) == 1 {
			query[k] = v[0]
		} else {
			query[k] = v
		}
	}
	auth := h.Auth
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	return json.Marshal(struct {
		Headers map[string]any  `json:"headers"`
		Time    string          `json:"time"`
		Address string          `json:"address"`
		XDomain bool            `json:"xdomain"`
		Secure  bool            `json:"secure"`
		Issued  int64           `json:"issued"`
		URL     string          `json:"url"`
		Query   map[string]any  `json:"query"`
		Auth    json.RawMessage `json:"auth"`
	}{headers, h.Time, h.Address, h.XDomain, h.Secure, h.Issued, h.URL, query, auth})
}
