package soak

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}, {1, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %v", got)
	}
}

func TestIsExpected(t *testing.T) {
	for _, c := range []struct {
		op, code, msg string
		want          bool
	}{
		{OpLobbyJoin, "CONFLICT", "POST /api/lobbies/x/join: lobby is full", true},
		{OpLobbyJoin, "CONFLICT", "POST /api/lobbies/x/join: lobby is not open for joining", true},
		// The client joins only when it is in no lobby: this one means its view is wrong.
		{OpLobbyJoin, "CONFLICT", "POST /api/lobbies/x/join: you are already in another open lobby", false},
		{OpLobbyJoin, "SERVICE_UNAVAILABLE", "try again", false},
		{OpLobbyLeave, "CONFLICT", "the lobby is busy, try again", true},
		{OpLobbyLeave, "FORBIDDEN", "not a member", false},
		{OpLobbyChat, "RATE_LIMITED", "Too many messages", true},
		{OpLobbyChat, "NOT_IN_CHAT", "join first", false},
		{OpMatchCancel, "CONFLICT", "not searching (status: matched)", true},
		{OpMatchStart, "CONFLICT", "already searching", false},
		{OpStatus, "INTERNAL", "", false},
		{OpLobbyCreate, "CONFLICT", "already in an open lobby", false},
	} {
		if got := IsExpected(c.op, c.code, c.msg); got != c.want {
			t.Errorf("IsExpected(%s, %s, %q) = %v, want %v", c.op, c.code, c.msg, got, c.want)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	r.Record(OpLobbyChat, true, "", "", 10*time.Millisecond)
	r.Record(OpLobbyChat, true, "", "", 30*time.Millisecond)
	r.Record(OpLobbyChat, true, "RATE_LIMITED", "chat:message: too many", 2*time.Millisecond)
	r.Record(OpLobbyChat, true, "TIMEOUT", "chat:message: no ack", 10*time.Second)
	r.Record(OpLobbyJoin, false, "INTERNAL", "POST /api/lobbies/1/join: boom", 5*time.Millisecond)
	r.Record(OpConnect, false, "", "", time.Second)  // not REST: left out of the REST percentiles
	r.Record(OpRegister, false, "", "", time.Second) // set-up: left out too
	ops, tot, samples := r.Summary()
	if len(ops) != 4 {
		t.Fatalf("ops %+v", ops)
	}
	var chat OpSummary
	for _, o := range ops {
		if o.Op == OpLobbyChat {
			chat = o
		}
	}
	if chat.Total != 4 || chat.OK != 2 || chat.Expected != 1 || chat.Timeouts != 1 || chat.Unexpected != 0 {
		t.Fatalf("chat %+v", chat)
	}
	if chat.Maxms != 30 || chat.P50ms != 10 { // the timeout has no latency
		t.Fatalf("chat latencies %+v", chat)
	}
	if chat.Codes["expected RATE_LIMITED"] != 1 || chat.Codes["timeout TIMEOUT"] != 1 {
		t.Fatalf("codes %v", chat.Codes)
	}
	if tot.Ops != 7 || tot.Unexpected != 1 || tot.Timeouts != 1 || tot.Expected != 1 || tot.OK != 4 {
		t.Fatalf("totals %+v", tot)
	}
	if tot.AckMaxms != 30 || tot.RestMaxms != 5 {
		t.Fatalf("ack/rest max %v %v", tot.AckMaxms, tot.RestMaxms)
	}
	if len(samples) != 2 || !strings.Contains(samples[1], "boom") {
		t.Fatalf("samples %q", samples)
	}
	if got := codeList(chat.Codes); got != "RATE_LIMITED×1 !TIMEOUT×1" {
		t.Fatalf("codeList %q", got)
	}
}

// TestShedIsCountedApart: a fast load-shedding refusal is "shed", apart from the accepted calls'
// latencies; a slow one, or a SERVICE_UNAVAILABLE of the store (other message), stays unexpected.
func TestShedIsCountedApart(t *testing.T) {
	r := NewRecorder()
	r.Record(OpLobbyChat, true, "", "", 20*time.Millisecond)
	r.Record(OpLobbyChat, true, "SERVICE_UNAVAILABLE", "chat:message: server busy, retry later", 310*time.Millisecond)
	r.Record(OpLobbyChat, true, "SERVICE_UNAVAILABLE", "chat:message: server busy, retry later", 2500*time.Millisecond)
	r.Record(OpLobbyChat, true, "SERVICE_UNAVAILABLE", "chat:message: Service temporarily unavailable, try again shortly", 40*time.Millisecond)
	r.Record(OpLobbyCreate, false, "SERVICE_UNAVAILABLE", "POST /api/lobbies: server busy, retry later", 300*time.Millisecond)
	r.Record(OpLobbyCreate, false, "SERVICE_UNAVAILABLE", "POST /api/lobbies: server busy, retry later", 5100*time.Millisecond)
	ops, tot, samples := r.Summary()
	if tot.Shed != 2 || tot.Unexpected != 3 || tot.OK != 1 || tot.Ops != 6 {
		t.Fatalf("totals %+v", tot)
	}
	for _, o := range ops {
		if o.Op == OpLobbyChat && (o.Shed != 1 || o.Unexpected != 2 || o.Codes["shed SERVICE_UNAVAILABLE"] != 1) {
			t.Fatalf("chat %+v", o)
		}
	}
	// Accepted calls' latencies leave the shed ones out; the slow refusals are in (they are failures).
	if tot.AckP50ms != 40 || tot.AckMaxms != 2500 || tot.RestMaxms != 5100 || tot.ShedMaxms != 310 || tot.ShedP50ms != 300 {
		t.Fatalf("latencies %+v", tot)
	}
	if len(samples) != 3 {
		t.Fatalf("samples %q", samples)
	}
	if IsShed("SERVICE_UNAVAILABLE", "server busy, retry later", 0) || IsShed("RATE_LIMITED", "server busy, retry later", time.Millisecond) {
		t.Fatal("IsShed accepts what it must not")
	}
}

func TestChoose(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	got := map[string]int{}
	for i := 0; i < 10000; i++ {
		got[Choose(rng, []choice{{"a", 1}, {"b", 3}, {"c", 0}})]++
	}
	if got["c"] != 0 || got[""] != 0 {
		t.Fatalf("weight 0 chosen: %v", got)
	}
	if got["b"] < 7000 || got["b"] > 8000 {
		t.Fatalf("b chosen %d times of 10000 with 3/4 of the weight", got["b"])
	}
	if Choose(rng, []choice{{"a", 0}}) != "" {
		t.Fatal("nothing to choose from")
	}
}

// The steps a client may take follow its state: no lobby steps outside a lobby, no new lobby or
// request while in one or searching, no socket steps offline.
func TestChoicesFollowState(t *testing.T) {
	allowed := func(connected, inLobby, searching bool) map[string]bool {
		out := map[string]bool{}
		for _, c := range choices(connected, inLobby, searching) {
			if c.weight > 0 {
				out[c.name] = true
			}
		}
		return out
	}
	free := allowed(true, false, false)
	for _, want := range []string{"lobby_create", "lobby_join", "match_start", "direct_chat", "status", "drop", "disconnect"} {
		if !free[want] {
			t.Errorf("a free connected client cannot %s", want)
		}
	}
	for _, not := range []string{"lobby_chat", "lobby_leave", "lobby_ready", "match_cancel"} {
		if free[not] {
			t.Errorf("a client in no lobby and not searching may %s", not)
		}
	}
	in := allowed(true, true, false)
	for _, not := range []string{"lobby_create", "lobby_join", "match_start"} {
		if in[not] {
			t.Errorf("a client in a lobby may %s", not)
		}
	}
	if !in["lobby_chat"] || !in["lobby_leave"] {
		t.Error("a client in a lobby cannot chat in it or leave it")
	}
	searching := allowed(true, false, true)
	if searching["lobby_join"] || searching["match_start"] || !searching["match_cancel"] {
		t.Errorf("searching client: %v", searching)
	}
	offline := allowed(false, true, false)
	for name := range offline {
		if name != "lobby_leave" {
			t.Errorf("an offline client may %s", name)
		}
	}
}

func TestCompare(t *testing.T) {
	m := &Model{
		LobbyOf:   map[string]string{"u1": "L1", "u2": "", "u3": "L2", "u4": "L1", "u5": ""},
		Uncertain: map[string]bool{"u5": true},
		Acked:     map[string]int{"c1": 3, "c2": 1},
		Unsure:    map[string]int{"c2": 1},
	}
	s := &StoreView{
		OpenLobbyOf: map[string][]string{"u1": {"L1"}, "u4": {"L1"}, "u3": {"L2"}, "u5": {"L9"}},
		Messages:    map[string]int{"c1": 3, "c2": 2},
	}
	if got := Compare(m, s); len(got) != 0 {
		t.Fatalf("agreeing state: %q", got)
	}
	// Each kind of disagreement is found.
	s.OpenLobbyOf["u2"] = []string{"L3"}        // the client left every lobby
	s.OpenLobbyOf["u3"] = []string{"L2", "L4"}  // two open lobbies
	s.OpenLobbyOf["u4"] = nil                   // the client is in L1
	s.Messages["c1"] = 2                        // an acknowledged message missing
	s.Messages["c3"] = 1                        // a message nobody had acknowledged
	s.Active = []string{"r1 user u1 searching"} // a request left active
	got := Compare(m, s)
	want := []string{"user u2:", "user u3:", "user u4:", "match request", "chat c1:", "chat c3:"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %q", len(got), len(want), got)
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no line about %q in:\n%s", w, all)
		}
	}
	if strings.Contains(all, "u5") {
		t.Errorf("an uncertain user was compared:\n%s", all)
	}
}

func TestParseMetrics(t *testing.T) {
	body := []byte(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
process_open_fds 17
maoga_errors_total{code="X",origin="rest"} 3
go_memstats_heap_alloc_bytes 1.5e+07
`)
	m := ParseMetrics(body)
	if m["go_goroutines"] != 42 || m["process_open_fds"] != 17 || m["go_memstats_heap_alloc_bytes"] != 1.5e7 {
		t.Fatalf("parsed %v", m)
	}
	if len(m) != 3 {
		t.Fatalf("labelled series kept: %v", m)
	}
}

func TestAckResult(t *testing.T) {
	raw := func(s string) []json.RawMessage { return []json.RawMessage{json.RawMessage(s)} }
	if ok, code, _, _ := ackResult(raw(`{"ok":true,"chatId":"c"}`)); !ok || code != "" {
		t.Fatalf("ok ack: %v %q", ok, code)
	}
	if ok, code, msg, _ := ackResult(raw(`{"ok":false,"error":{"code":"RATE_LIMITED","message":"slow"}}`)); ok || code != "RATE_LIMITED" || msg != "slow" {
		t.Fatalf("failed ack: %v %q %q", ok, code, msg)
	}
	for _, bad := range []string{`{"ok":false}`, `"x"`, `[1]`} {
		if ok, code, _, _ := ackResult(raw(bad)); ok || code != "BAD_ACK" {
			t.Fatalf("%s: %v %q", bad, ok, code)
		}
	}
	if ok, code, _, _ := ackResult(nil); ok || code != "BAD_ACK" {
		t.Fatalf("no args: %v %q", ok, code)
	}
}

func TestCheckResources(t *testing.T) {
	base := Resources{Goroutines: 300, OpenFDs: 400, HeapAlloc: 5e6}
	rep := &Report{Baseline: base, After: base, Bounds: Bounds{Goroutines: 20, OpenFDs: 10, HeapBytes: 16e6}}
	checkResources(rep)
	if len(rep.Failures) != 0 {
		t.Fatalf("same numbers failed: %v", rep.Failures)
	}
	rep.After = Resources{Goroutines: 321, OpenFDs: 411, HeapAlloc: 21.1e6, Sockets: 1}
	checkResources(rep)
	if len(rep.Failures) != 4 {
		t.Fatalf("want goroutines, fds, heap and sockets failures, got %q", rep.Failures)
	}
	// The store's SQLite files may grow up to their own bound; the other fds may not.
	rep = &Report{Baseline: Resources{OpenFDs: 150, StoreFiles: 70}, After: Resources{OpenFDs: 250, StoreFiles: 170},
		Bounds: Bounds{OpenFDs: 10}}
	checkResources(rep)
	if len(rep.Failures) != 0 {
		t.Fatalf("store files within their bound failed: %v", rep.Failures)
	}
	rep.After = Resources{OpenFDs: 400, StoreFiles: 202}
	checkResources(rep)
	if len(rep.Failures) != 2 {
		t.Fatalf("want the store-file bound and the other-fds failures, got %q", rep.Failures)
	}
}

func TestLogFileCounts(t *testing.T) {
	lf, err := newLogFile(t.TempDir() + "/server.log")
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	// Lines arrive in arbitrary pieces.
	for _, p := range []string{"time=1 level=INFO msg=a\ntime=2 level=WA", "RN msg=b\ntime=3 level=ERROR msg=\"c\"\n",
		"panic: boom\n\ngoroutine 1 [running]:\n", "time=4 level=ERROR msg=d"} {
		lf.Write([]byte(p))
	}
	warn, errs, panics, lines := lf.counts(10)
	if warn != 1 || errs != 1 || panics != 1 {
		t.Fatalf("warn %d errors %d panics %d", warn, errs, panics)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], `msg="c"`) || lines[1] != "panic: boom" {
		t.Fatalf("lines %q", lines)
	}
	if !strings.Contains(lf.tail(100), "level=ERROR msg=d") {
		t.Fatalf("tail %q", lf.tail(100))
	}
}
