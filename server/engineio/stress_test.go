package engineio

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBroadcastStress sends from many goroutines to many sessions (websocket,
// polling and upgrading ones) while clients echo, under -race.
func TestBroadcastStress(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: 500 * time.Millisecond}, true)
	const wsClients, pollClients, perSender = 8, 4, 50

	var conns []*Conn
	var wsc []*wsClient
	for i := 0; i < wsClients; i++ {
		c := ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, c.readText())
		wsc = append(wsc, c)
		conns = append(conns, ts.conn())
	}
	var sids []string
	for i := 0; i < pollClients; i++ {
		sids = append(sids, ts.pollingSession())
		conns = append(conns, ts.conn())
	}

	// websocket clients read everything, answer pings, and count messages
	var wg sync.WaitGroup
	counts := make([]int, wsClients)
	for i, c := range wsc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for counts[i] < 2*perSender {
				f, err := c.read()
				if err != nil {
					t.Errorf("ws client %d: %v after %d", i, err, counts[i])
					return
				}
				switch s := string(f.Payload); {
				case s == "2":
					c.sendText("3")
				case strings.HasPrefix(s, "4b"):
					counts[i]++
				}
			}
		}()
	}
	// polling clients poll and answer pings
	pollCounts := make([]int, pollClients)
	for i, sid := range sids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "EIO=4&transport=polling&sid=" + sid
			for pollCounts[i] < 2*perSender {
				r := ts.do("GET", q, "")
				if r.status != 200 {
					t.Errorf("poll client %d: %d after %d", i, r.status, pollCounts[i])
					return
				}
				for _, p := range strings.Split(r.body, "\x1e") {
					switch {
					case p == "2":
						ts.do("POST", q, "3")
					case strings.HasPrefix(p, "4b"):
						pollCounts[i]++
					}
				}
			}
		}()
	}
	// two broadcasters
	var sendWG sync.WaitGroup
	for s := 0; s < 2; s++ {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for i := 0; i < perSender; i++ {
				m := Message{Data: []byte(fmt.Sprintf("b%d-%d", s, i))}
				for _, c := range conns {
					if err := c.Send(m); err != nil {
						t.Errorf("send: %v", err)
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	sendWG.Wait()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("timeout: ws %v polling %v", counts, pollCounts)
	}
	if n := ts.srv.Count(); n != wsClients+pollClients {
		t.Fatalf("Count %d", n)
	}
}
