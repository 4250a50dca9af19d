// Package clientaddr finds the address of the client behind reverse proxies that the operator
// trusts (TRUSTED_PROXIES). Behind nginx every connection comes from nginx, so per-address limits
// and logs would see one client; the proxy says who its client was in X-Forwarded-For, but any
// client can send that header too, so it is believed only when the connection comes from a trusted
// proxy, and only up to the first hop that is not trusted:
//
//	X-Forwarded-For: <forged>, <client>, <proxy 1>     peer: <proxy 2>
//
// With proxy 1 and proxy 2 trusted, the walk goes right to left — peer (trusted), proxy 1
// (trusted), client (not trusted): the client is <client>; whatever the client wrote to the left
// of it is ignored. Without trusted proxies (the default) the peer address is the client.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver answers the client address of requests. The zero value trusts nobody.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts the proxies in the given ranges.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: append([]netip.Prefix(nil), trusted...)}
}

// ParseList parses a comma-separated list of CIDR ranges or single addresses ("10.0.0.0/8,
// 192.168.1.10, ::1"); an empty list is nil. Every malformed entry is reported.
func ParseList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var bad []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(part); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, part)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("not an address or CIDR range: %s", strings.Join(bad, ", "))
	}
	return out, nil
}

// Trusts reports whether a is a trusted proxy.
func (r *Resolver) Trusts(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the client's address of req as text (the peer's host when it cannot be parsed).
func (r *Resolver) ClientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return r.Client(peer.Unmap(), req.Header).String()
}

// Client walks the forwarding headers from peer on (see the package comment). X-Forwarded-For
// (all its fields, in order) is preferred; X-Real-IP is used when a trusted peer sent no
// X-Forwarded-For. An entry that is not an address stops the walk at the hop that added it.
func (r *Resolver) Client(peer netip.Addr, h http.Header) netip.Addr {
	if !r.Trusts(peer) {
		return peer
	}
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	if len(hops) == 0 {
		if a, ok := parseHop(h.Get("X-Real-IP")); ok {
			return a
		}
		return peer
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return client // the trusted hop to the right of the garbage
		}
		client = a
		if !r.Trusts(a) {
			return a
		}
	}
	return client // every hop trusted: the left-most one
}

// parseHop parses one X-Forwarded-For entry: an address, possibly "[v6]" or with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
