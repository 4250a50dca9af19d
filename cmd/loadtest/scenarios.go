package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// config is one run of one scenario against one server (two for "cluster").
type config struct {
	scenario    string
	server      string // label: go, node, raw
	targets     []target
	raw         bool
	clients     int
	roomSize    int
	rate        float64 // msgs/s in total (echo, chat); fan-out sender rate, 0 = as fast as the window allows
	window      int     // fan-out: messages in flight before the sender waits
	duration    time.Duration
	warmup      time.Duration
	payload     int // padding bytes in each message
	concurrency int // parallel dials
	workers     int // churn
}

// Result is one line of results.json.
type Result struct {
	Server   string  `json:"server"`
	Scenario string  `json:"scenario"`
	Clients  int     `json:"clients"`
	RoomSize int     `json:"room_size,omitempty"`
	Rate     float64 `json:"rate,omitempty"`

	ConnectSecs   float64 `json:"connect_secs"`
	ConnectRate   float64 `json:"connect_rate"` // connections completed per second (churn: connect+disconnect cycles)
	ConnectErrors int64   `json:"connect_errors"`
	Held          int64   `json:"held"` // clients still connected at the end

	RSSBefore         int64   `json:"rss_before"`
	RSSAfter          int64   `json:"rss_after"`
	RSSPerConn        float64 `json:"rss_per_conn"`      // bytes, after a forced GC in the server (both runtimes)
	RSSPerConnNoGC    float64 `json:"rss_per_conn_nogc"` // bytes, as the server stands before that GC
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
	HeapPerConn       float64 `json:"heap_per_conn"`  // bytes after the GC: Go heap in use, Node V8 heapUsed
	StackPerConn      float64 `json:"stack_per_conn"` // bytes after the GC: goroutine stacks (Go only)

	DurationSecs       float64 `json:"duration_secs"`
	Sent               int64   `json:"sent"`
	Expected           int64   `json:"expected"`
	Delivered          int64   `json:"delivered"`
	Lost               int64   `json:"lost"`
	DeliveredPerSec    float64 `json:"delivered_per_sec"`
	ServerCPUSecs      float64 `json:"server_cpu_secs"`
	ServerCPUUtil      float64 `json:"server_cpu_util"` // cores busy on average
	DeliveredPerCPUSec float64 `json:"delivered_per_cpu_sec"`
	GenCPUUtil         float64 `json:"gen_cpu_util"`

	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`

	Errors  int64   `json:"errors"`
	LoadAvg float64 `json:"loadavg"`
	Time    string  `json:"time"`
	Note    string  `json:"note,omitempty"`
}

// run holds the counters shared by the readers of one scenario.
type run struct {
	cfg   config
	base  time.Time
	lat   hist
	live  atomic.Int64
	errs  atomic.Int64
	sent  atomic.Int64 // messages sent (all)
	sentW atomic.Int64 // messages sent inside the window

	winStart, winEnd atomic.Int64 // ns since base; 0 = not yet set
	delivered        atomic.Int64 // deliveries of messages sent inside the window
	deliveredAll     atomic.Int64
}

func newRun(cfg config) *run { return &run{cfg: cfg, base: time.Now()} }

func (r *run) now() int64 { return int64(time.Since(r.base)) }

func (r *run) inWindow(t int64) bool {
	ws, we := r.winStart.Load(), r.winEnd.Load()
	return ws > 0 && t >= ws && (we == 0 || t < we)
}

// onPacket counts an event or ack carrying a timestamp and records its latency.
func (r *run) onPacket(pkt []byte) {
	if len(pkt) == 0 || (pkt[0] != '2' && pkt[0] != '3') {
		if len(pkt) > 0 && pkt[0] == '4' {
			r.errs.Add(1)
		}
		return
	}
	r.deliveredAll.Add(1)
	t := stampOf(pkt)
	if t < 0 || !r.inWindow(t) {
		return
	}
	r.delivered.Add(1)
	r.lat.record(r.now() - t)
}

// payload is the JSON object every message carries: its send time and padding.
func (r *run) payload(buf []byte, t int64) []byte {
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, t, 10)
	buf = append(buf, `,"p":"`...)
	for i := 0; i < r.cfg.payload; i++ {
		buf = append(buf, 'x')
	}
	return append(buf, `"}`...)
}

// stamp returns a send time and counts the message in the window when it is.
func (r *run) stamp() int64 {
	t := r.now()
	r.sent.Add(1)
	if r.inWindow(t) {
		r.sentW.Add(1)
	}
	return t
}

// connectAll opens n clients on tgt with bounded concurrency; query(i) gives client i's handshake query.
func (r *run) connectAll(tgt target, n int, query func(i int) url.Values) ([]*client, time.Duration) {
	clients := make([]*client, n)
	sem := make(chan struct{}, r.cfg.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	var logged atomic.Bool
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			var q url.Values
			if query != nil {
				q = query(i)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := dial(ctx, tgt.ws, q, r.cfg.raw, r.onPacket, &r.live)
			if err != nil {
				r.errs.Add(1)
				if logged.CompareAndSwap(false, true) {
					fmt.Printf("connect error (first of possibly many): %v\n", err)
				}
				return
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	out := clients[:0]
	for _, c := range clients {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, el
}

func closeAll(cs []*client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range cs {
		sem <- struct{}{}
		wg.Add(1)
		go func(c *client) { defer func() { <-sem; wg.Done() }(); c.close() }(c)
	}
	wg.Wait()
}

func roomQuery(room string) url.Values { return url.Values{"room": {room}} }

// execute runs cfg's scenario.
func execute(cfg config) (*Result, error) {
	r := newRun(cfg)
	res := &Result{Server: cfg.server, Scenario: cfg.scenario, Clients: cfg.clients, Time: time.Now().UTC().Format(time.RFC3339)}
	var err error
	switch cfg.scenario {
	case "idle":
		err = r.idle(res)
	case "echo":
		err = r.echo(res)
	case "fanout":
		err = r.fanout(res, cfg.targets[0], cfg.targets[0])
	case "cluster":
		if len(cfg.targets) < 2 {
			return nil, errors.New("cluster needs -url2 (the second node)")
		}
		err = r.fanout(res, cfg.targets[0], cfg.targets[1])
	case "chat":
		err = r.chat(res)
	case "churn":
		err = r.churn(res, false)
	case "churn-polling":
		err = r.churn(res, true)
	default:
		return nil, fmt.Errorf("unknown scenario %q", cfg.scenario)
	}
	res.Errors = r.errs.Load()
	res.LoadAvg = loadAvg()
	return res, err
}

// idle: N clients connected and doing nothing; memory and goroutines per connection, and whether all
// of them are still connected after the hold time.
func (r *run) idle(res *Result) error {
	tgt := r.cfg.targets[0]
	st0, err := tgt.fetchStats(true)
	if err != nil {
		return err
	}
	cs, el := r.connectAll(tgt, r.cfg.clients, nil)
	defer closeAll(cs)
	res.ConnectSecs = el.Seconds()
	res.ConnectRate = float64(len(cs)) / el.Seconds()
	res.ConnectErrors = int64(r.cfg.clients - len(cs))
	time.Sleep(r.cfg.warmup)
	stNoGC, err := tgt.fetchStats(false)
	if err != nil {
		return err
	}
	st1, err := tgt.fetchStats(true)
	if err != nil {
		return err
	}
	res.RSSBefore, res.RSSAfter = st0.RSS, st1.RSS
	if n := len(cs); n > 0 {
		res.RSSPerConn = float64(st1.RSS-st0.RSS) / float64(n)
		res.RSSPerConnNoGC = float64(stNoGC.RSS-st0.RSS) / float64(n)
		res.GoroutinesPerConn = float64(st1.Goroutines-st0.Goroutines) / float64(n)
		res.HeapPerConn = float64(st1.HeapInuse-st0.HeapInuse) / float64(n)
		res.StackPerConn = float64(st1.StackInuse-st0.StackInuse) / float64(n)
	}
	time.Sleep(r.cfg.duration)
	res.Held = r.live.Load()
	if st2, err := tgt.fetchStats(false); err == nil && int64(st2.Conns) < res.Held {
		res.Held = int64(st2.Conns) // the server's own count, when it is lower
	}
	res.DurationSecs = r.cfg.duration.Seconds()
	return nil
}

// window runs load from now until the end of warmup+duration, measuring server CPU over the window,
// then waits (bounded) for the in-flight deliveries. expected maps messages sent in the window to
// deliveries expected.
func (r *run) window(res *Result, tgts []target, load func(ctx context.Context), expected func(sent int64) int64) error {
	ctx, cancel := context.WithCancel(context.Background())
	start := r.now() + int64(r.cfg.warmup)
	r.winStart.Store(start)
	r.winEnd.Store(start + int64(r.cfg.duration))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load(ctx) }()

	time.Sleep(r.cfg.warmup)
	cpu0, err := cpuOf(tgts)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	gen0 := selfCPU()
	t0 := time.Now()
	time.Sleep(r.cfg.duration)
	cpu1, err := cpuOf(tgts)
	gen1 := selfCPU()
	wall := time.Since(t0).Seconds()
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	// drain: wait while deliveries still arrive (at most 15 s), and stop after 2 s without progress
	exp := expected(r.sentW.Load())
	hard := time.Now().Add(15 * time.Second)
	last, lastAt := r.delivered.Load(), time.Now()
	for r.delivered.Load() < exp && time.Now().Before(hard) && time.Since(lastAt) < 2*time.Second {
		time.Sleep(20 * time.Millisecond)
		if d := r.delivered.Load(); d != last {
			last, lastAt = d, time.Now()
		}
	}
	res.DurationSecs = r.cfg.duration.Seconds()
	res.Sent = r.sentW.Load()
	res.Expected = exp
	res.Delivered = r.delivered.Load()
	res.Lost = exp - res.Delivered
	res.DeliveredPerSec = float64(res.Delivered) / res.DurationSecs
	res.ServerCPUSecs = float64(cpu1-cpu0) / 1000
	res.ServerCPUUtil = res.ServerCPUSecs / wall
	if res.ServerCPUSecs > 0 {
		res.DeliveredPerCPUSec = float64(res.Delivered) / res.ServerCPUSecs
	}
	res.GenCPUUtil = (gen1 - gen0).Seconds() / wall
	res.P50ms, res.P99ms, res.P999ms = r.lat.quantile(0.5), r.lat.quantile(0.99), r.lat.quantile(0.999)
	res.Held = r.live.Load()
	return nil
}

func cpuOf(tgts []target) (int64, error) {
	var sum int64
	for _, t := range tgts {
		// A local server's CPU comes from /proc: no HTTP round trip to a server whose event loop may
		// be busy with the load (Node's /debug/stats once took over 10 s in the fan-out smoke run).
		if t.pid > 0 {
			if cpu, err := procCPUms(t.pid); err == nil {
				sum += cpu
				continue
			}
		}
		st, err := t.fetchStats(false)
		if err != nil {
			return 0, err
		}
		sum += st.CPUms
	}
	return sum, nil
}

// pace calls send rate times per second (spread over 1ms ticks) until ctx ends.
func pace(ctx context.Context, rate float64, send func(i int64)) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var n int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * rate)
		for ; n < due; n++ {
			if ctx.Err() != nil {
				return
			}
			send(n)
		}
	}
}

// echo: N clients send "echo" with an ack at a fixed total rate; latency is send → ack.
func (r *run) echo(res *Result) error {
	tgt := r.cfg.targets[0]
	cs, el := r.connectAll(tgt, r.cfg.clients, nil)
	defer closeAll(cs)
	res.ConnectSecs, res.ConnectRate = el.Seconds(), float64(len(cs))/el.Seconds()
	res.ConnectErrors = int64(r.cfg.clients - len(cs))
	res.Rate = r.cfg.rate
	if len(cs) == 0 {
		return errors.New("no client connected")
	}
	buf := make([]byte, 0, 256)
	load := func(ctx context.Context) {
		pace(ctx, r.cfg.rate, func(i int64) {
			c := cs[int(i)%len(cs)]
			buf = append(buf[:0], "42"...)
			buf = strconv.AppendInt(buf, i, 10)
			buf = append(buf, `["echo",`...)
			buf = r.payload(buf, r.stamp())
			buf = append(buf, ']')
			if err := c.send(buf); err != nil {
				r.errs.Add(1)
			}
		})
	}
	return r.window(res, []target{tgt}, load, func(s int64) int64 { return s })
}

// fanout: roomSize receivers on recv in one room, one sender on send; "fanout" makes the server emit
// to the room. Without a rate the sender keeps at most window messages in flight.
func (r *run) fanout(res *Result, send, recv target) error {
	R := r.cfg.roomSize
	res.RoomSize, res.Clients, res.Rate = R, R+1, r.cfg.rate
	cs, el := r.connectAll(recv, R, func(int) url.Values { return roomQuery("f0") })
	defer closeAll(cs)
	res.ConnectSecs, res.ConnectRate = el.Seconds(), float64(len(cs))/el.Seconds()
	res.ConnectErrors = int64(R - len(cs))
	var senderQ url.Values
	if r.cfg.raw {
		senderQ = url.Values{"target": {"f0"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	sender, err := dial(ctx, send.ws, senderQ, r.cfg.raw, nil, nil)
	cancel()
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	defer sender.close()
	n := int64(len(cs))
	buf := make([]byte, 0, 256)
	emit := func() {
		if r.cfg.raw { // the exact bytes the Socket.IO server would write to each receiver
			buf = append(buf[:0], `42["msg",`...)
		} else {
			buf = append(buf[:0], `42["fanout","f0",`...)
		}
		buf = r.payload(buf, r.stamp())
		buf = append(buf, ']')
		if err := sender.send(buf); err != nil {
			r.errs.Add(1)
		}
	}
	load := func(ctx context.Context) {
		if r.cfg.rate > 0 {
			pace(ctx, r.cfg.rate, func(int64) { emit() })
			return
		}
		w := int64(r.cfg.window)
		for ctx.Err() == nil {
			for r.sent.Load()*n-r.deliveredAll.Load() > w*n {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
			emit()
		}
	}
	tgts := []target{send}
	if recv != send {
		tgts = append(tgts, recv)
	}
	return r.window(res, tgts, load, func(s int64) int64 { return s * n })
}

// chat: rooms of roomSize clients; every client sends "chat" in turn so that the total is rate
// msgs/s; the server emits to the sender's room but the sender.
func (r *run) chat(res *Result) error {
	tgt := r.cfg.targets[0]
	S := r.cfg.roomSize
	res.RoomSize, res.Rate = S, r.cfg.rate
	cs, el := r.connectAll(tgt, r.cfg.clients, func(i int) url.Values { return roomQuery("c" + strconv.Itoa(i/S)) })
	defer closeAll(cs)
	res.ConnectSecs, res.ConnectRate = el.Seconds(), float64(len(cs))/el.Seconds()
	res.ConnectErrors = int64(r.cfg.clients - len(cs))
	if len(cs) == 0 {
		return errors.New("no client connected")
	}
	buf := make([]byte, 0, 256)
	load := func(ctx context.Context) {
		pace(ctx, r.cfg.rate, func(i int64) {
			// stride through the rooms so that consecutive messages go to different rooms
			rooms := int64(len(cs) / S)
			if rooms == 0 {
				rooms = 1
			}
			idx := int((i%rooms)*int64(S) + (i/rooms)%int64(S))
			if idx >= len(cs) {
				idx = int(i) % len(cs)
			}
			buf = append(buf[:0], `42["chat",`...)
			buf = r.payload(buf, r.stamp())
			buf = append(buf, ']')
			if err := cs[idx].send(buf); err != nil {
				r.errs.Add(1)
			}
		})
	}
	return r.window(res, []target{tgt}, load, func(s int64) int64 { return s * int64(S-1) })
}

// churn: workers connect (full Socket.IO handshake) and disconnect in a loop; connects per second and
// the connect latency. With polling the handshake runs over HTTP long-polling.
func (r *run) churn(res *Result, polling bool) error {
	tgt := r.cfg.targets[0]
	res.Clients = r.cfg.workers
	var done atomic.Int64
	var pc *pollClient
	if polling {
		pc = newPollClient(tgt.http, r.cfg.workers)
	}
	load := func(ctx context.Context) {
		var wg sync.WaitGroup
		for w := 0; w < r.cfg.workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					t0 := r.now()
					var err error
					if polling {
						err = pc.cycle(ctx)
					} else {
						dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						var c *client
						c, err = dial(dctx, tgt.ws, nil, r.cfg.raw, nil, nil)
						cancel()
						if err == nil {
							c.close()
						}
					}
					if err != nil {
						if ctx.Err() == nil {
							r.errs.Add(1)
							if strings.Contains(err.Error(), "too many open files") {
								time.Sleep(10 * time.Millisecond)
							}
						}
						continue
					}
					if r.inWindow(t0) {
						done.Add(1)
						r.delivered.Add(1)
						r.lat.record(r.now() - t0)
					}
				}
			}()
		}
		wg.Wait()
	}
	err := r.window(res, []target{tgt}, load, func(int64) int64 { return 0 })
	res.Expected, res.Lost, res.Sent = 0, 0, 0
	res.ConnectRate = float64(done.Load()) / r.cfg.duration.Seconds()
	res.DeliveredPerSec = 0
	res.Note = "latency = full connect (handshake to CONNECT answer), delivered = completed connect/disconnect cycles"
	return err
}
