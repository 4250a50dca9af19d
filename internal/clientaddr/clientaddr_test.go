package clientaddr

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	got, err := ParseList(" 10.0.0.0/8, 192.168.1.10 ,::1,, 172.16.5.4/12 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.10/32", "::1/128", "172.16.0.0/12"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("%d: %v, want %s", i, got[i], want[i])
		}
	}
	if l, err := ParseList(""); err != nil || l != nil {
		t.Fatalf("empty: %v %v", l, err)
	}
	_, err = ParseList("10.0.0.0/8, nginx, 300.1.1.1, 10.0.0.0/33")
	if err == nil || !strings.Contains(err.Error(), "nginx") || !strings.Contains(err.Error(), "300.1.1.1") ||
		!strings.Contains(err.Error(), "10.0.0.0/33") {
		t.Fatalf("want every bad entry named: %v", err)
	}
}

func TestClientIP(t *testing.T) {
	trusted, _ := ParseList("10.0.0.0/8, 127.0.0.1")
	r := New(trusted)
	cases := []struct {
		name, remote string
		xff          []string
		realIP       string
		want         string
	}{
		{"no proxy: the peer", "203.0.113.9:5000", nil, "", "203.0.113.9"},
		{"untrusted peer: headers ignored", "203.0.113.9:5000", []string{"1.2.3.4"}, "5.6.7.8", "203.0.113.9"},
		{"trusted peer: right-most hop", "10.0.0.2:80", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"forged left part ignored", "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.7"}, "", "198.51.100.7"},
		{"trusted hops skipped", "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.7, 10.1.2.3"}, "", "198.51.100.7"},
		{"several headers in order", "10.0.0.2:80", []string{"6.6.6.6", "198.51.100.7, 10.1.2.3"}, "", "198.51.100.7"},
		{"every hop trusted: left-most", "10.0.0.2:80", []string{"10.9.9.9, 10.1.2.3"}, "", "10.9.9.9"},
		{"garbage stops the walk at the proxy that added it", "10.0.0.2:80", []string{"6.6.6.6, not-an-ip, 10.1.2.3"}, "", "10.1.2.3"},
		{"port and brackets", "10.0.0.2:80", []string{"[2001:db8::5]:443"}, "", "2001:db8::5"},
		{"X-Real-IP without XFF", "10.0.0.2:80", nil, "198.51.100.8", "198.51.100.8"},
		{"XFF wins over X-Real-IP", "10.0.0.2:80", []string{"198.51.100.7"}, "198.51.100.8", "198.51.100.7"},
		{"trusted peer, no header: the peer", "127.0.0.1:80", nil, "", "127.0.0.1"},
		{"v4-mapped peer", "[::ffff:10.0.0.2]:80", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"unparsable peer kept", "@", []string{"198.51.100.7"}, "", "@"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.remote
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if c.realIP != "" {
			req.Header.Set("X-Real-IP", c.realIP)
		}
		if got := r.ClientIP(req); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	var none *Resolver
	req, _ := http.NewRequest("GET", "/", nil)
	req.RemoteAddr, req.Header["X-Forwarded-For"] = "10.0.0.2:80", []string{"1.2.3.4"}
	if got := none.ClientIP(req); got != "10.0.0.2" {
		t.Fatalf("nil resolver: %q", got)
	}
}
