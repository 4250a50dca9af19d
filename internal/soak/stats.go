package soak

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Outcome of one operation.
const (
	OutcomeOK         = "ok"
	OutcomeExpected   = "expected" // a documented refusal the scenario provokes (lobby full, rate limited, ...)
	OutcomeUnexpected = "unexpected"
	OutcomeTimeout    = "timeout"
	// OutcomeShed: the server's load shedding refused the call (SERVICE_UNAVAILABLE "server busy,
	// retry later") within ShedMaxLatency: an honest refusal under overload, nothing of the call ran.
	// A SERVICE_UNAVAILABLE that took longer, or any other one, stays unexpected.
	OutcomeShed = "shed"
)

// ShedMessage is the message of a load-shedding refusal (services/admission.MsgBusy).
const ShedMessage = "server busy, retry later"

// ShedMaxLatency is how fast a refusal must come to count as shed: the server's queue wait
// (LIMIT_INFLIGHT_QUEUE_WAIT, 300 ms) plus slack. A refusal that kept the client waiting seconds
// is no better than a timeout.
const ShedMaxLatency = time.Second

// IsShed reports whether an answer is a fast load-shedding refusal.
func IsShed(code, message string, took time.Duration) bool {
	return code == "SERVICE_UNAVAILABLE" && strings.Contains(message, ShedMessage) && took > 0 && took <= ShedMaxLatency
}

// rule is one documented refusal the scenario provokes on purpose or by races it cannot avoid.
// REST answers carry REST.md's generic codes (a JOIN_ERROR is CONFLICT there), so some rules look at
// the message too.
type rule struct {
	code string
	// with, when set, must be in the message; without, when set, must not be.
	with, without string
}

// expected lists, per operation, the refusals the scenario provokes. Anything else (INTERNAL,
// SERVICE_UNAVAILABLE, a timeout, a refusal the client's own state rules out) is unexpected and
// fails the run.
var expected = map[string][]rule{
	// A random lobby from the shared list may be full, closed or started (409 CONFLICT). "You are
	// already in another open lobby" is not expected: the client joins only when it is in none.
	OpLobbyJoin: {{code: "CONFLICT", without: "already in another open lobby"}},
	// Readiness toggles race with members joining and leaving ("the lobby is busy, try again").
	OpLobbyReady: {{code: "READY_ERROR"}, {code: "LOBBY_ERROR", with: "busy"}},
	OpLobbyLeave: {{code: "CONFLICT", with: "busy"}},
	// The per-user chat budget (CHAT_MESSAGE_LIMIT per CHAT_MESSAGE_WINDOW, CHAT_TYPING_LIMIT) is
	// left at its default: a burst of one user's messages is refused, as in production.
	OpLobbyChat:  {{code: "RATE_LIMITED"}},
	OpDirectChat: {{code: "RATE_LIMITED"}},
	OpTyping:     {{code: "RATE_LIMITED"}},
	// The matcher may have claimed or matched the request a moment before the cancel or subscribe.
	OpMatchCancel:    {{code: "CANCEL_ERROR"}, {code: "CONFLICT"}},
	OpMatchSubscribe: {{code: "SUBSCRIPTION_ERROR"}},
}

// IsExpected reports whether an answer with code and message is a refusal op may give in the scenario.
func IsExpected(op, code, message string) bool {
	for _, r := range expected[op] {
		if r.code == code && (r.with == "" || strings.Contains(message, r.with)) &&
			(r.without == "" || !strings.Contains(message, r.without)) {
			return true
		}
	}
	return false
}

// Operations (the names in the report).
const (
	OpRegister       = "register"
	OpConnect        = "connect"
	OpDisconnect     = "disconnect"
	OpDrop           = "drop+recover"
	OpLobbyCreate    = "lobby:create"
	OpLobbyJoin      = "lobby:join(rest)"
	OpLobbySubscribe = "lobby:join(socket)"
	OpLobbyLeave     = "lobby:leave"
	OpLobbyReady     = "lobby:ready"
	OpChatJoin       = "chat:join"
	OpLobbyChat      = "chat:message(lobby)"
	OpDirectOpen     = "chat:direct(rest)"
	OpDirectChat     = "chat:message(direct)"
	OpTyping         = "chat:typing"
	OpStatus         = "user:status"
	OpMatchStart     = "matchmaking:start"
	OpMatchSubscribe = "matchmaking:subscribe"
	OpMatchCancel    = "matchmaking:cancel"
	OpMatchGet       = "matchmaking:get"
)

// Recorder collects outcomes and latencies of operations; safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	ops map[string]*opStats
	// First few unexpected errors, for the report.
	samples []string
}

type opStats struct {
	counts map[string]int  // outcome → n
	codes  map[string]int  // outcome + " " + code → n (errors only)
	lat    []time.Duration // answered calls, shed ones excepted
	shed   []time.Duration // latencies of the shed ones
	socket bool            // acknowledged Socket.IO event (else REST or connection)
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{ops: map[string]*opStats{}} }

// MaxSamples bounds the unexpected errors kept verbatim.
const MaxSamples = 30

// Record notes one operation: code is "" on success; a timeout has code "TIMEOUT". Latency counts
// only operations the server accepted and answered (timeouts have none; shed ones are kept apart). socket marks Socket.IO acknowledgements.
// detail names the call and carries the server's message, which the rules of IsExpected look at.
func (r *Recorder) Record(op string, socket bool, code, detail string, d time.Duration) string {
	outcome := OutcomeOK
	switch {
	case code == "":
	case code == "TIMEOUT":
		outcome = OutcomeTimeout
	case IsShed(code, detail, d):
		outcome = OutcomeShed
	case IsExpected(op, code, detail):
		outcome = OutcomeExpected
	default:
		outcome = OutcomeUnexpected
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.ops[op]
	if s == nil {
		s = &opStats{counts: map[string]int{}, codes: map[string]int{}, socket: socket}
		r.ops[op] = s
	}
	s.counts[outcome]++
	if code != "" {
		s.codes[outcome+" "+code]++
	}
	switch {
	case outcome == OutcomeShed:
		s.shed = append(s.shed, d)
	case outcome != OutcomeTimeout && d > 0:
		s.lat = append(s.lat, d)
	}
	if (outcome == OutcomeUnexpected || outcome == OutcomeTimeout) && len(r.samples) < MaxSamples {
		r.samples = append(r.samples, fmt.Sprintf("%s %s: %s", op, code, detail))
	}
	return outcome
}

// OpSummary is one operation's line of the report.
type OpSummary struct {
	Op         string         `json:"op"`
	Socket     bool           `json:"socketAck"`
	Total      int            `json:"total"`
	OK         int            `json:"ok"`
	Expected   int            `json:"expected"`
	Unexpected int            `json:"unexpected"`
	Timeouts   int            `json:"timeouts"`
	Shed       int            `json:"shed"`
	Codes      map[string]int `json:"codes,omitempty"` // "expected JOIN_ERROR" → n
	P50ms      float64        `json:"p50ms"`
	P99ms      float64        `json:"p99ms"`
	Maxms      float64        `json:"maxms"`
}

// Totals sums the operations and gives the latency percentiles of socket acks and of the REST calls
// of the scenario (registration, the set-up, has its own line).
type Totals struct {
	Ops        int `json:"ops"`
	OK         int `json:"ok"`
	Expected   int `json:"expected"`
	Unexpected int `json:"unexpected"`
	Timeouts   int `json:"timeouts"`
	Shed       int `json:"shed"`
	// Latencies of the calls the server accepted (shed ones are not in them).
	AckP50ms  float64 `json:"ackP50ms"`
	AckP99ms  float64 `json:"ackP99ms"`
	AckMaxms  float64 `json:"ackMaxms"`
	RestP50ms float64 `json:"restP50ms"`
	RestP99ms float64 `json:"restP99ms"`
	RestMaxms float64 `json:"restMaxms"`
	// How long the shed calls (socket and REST) waited for their refusal.
	ShedP50ms float64 `json:"shedP50ms"`
	ShedMaxms float64 `json:"shedMaxms"`
}

// Summary returns the per-operation lines (sorted by name), the totals and the error samples.
func (r *Recorder) Summary() ([]OpSummary, Totals, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []OpSummary
	var tot Totals
	var acks, rest, shed []time.Duration
	for op, s := range r.ops {
		o := OpSummary{Op: op, Socket: s.socket, OK: s.counts[OutcomeOK], Expected: s.counts[OutcomeExpected],
			Unexpected: s.counts[OutcomeUnexpected], Timeouts: s.counts[OutcomeTimeout], Shed: s.counts[OutcomeShed]}
		o.Total = o.OK + o.Expected + o.Unexpected + o.Timeouts + o.Shed
		if len(s.codes) > 0 {
			o.Codes = map[string]int{}
			for k, v := range s.codes {
				o.Codes[k] = v
			}
		}
		o.P50ms, o.P99ms, o.Maxms = ms(Percentile(s.lat, 50)), ms(Percentile(s.lat, 99)), ms(Percentile(s.lat, 100))
		out = append(out, o)
		tot.Ops += o.Total
		tot.OK += o.OK
		tot.Expected += o.Expected
		tot.Unexpected += o.Unexpected
		tot.Timeouts += o.Timeouts
		tot.Shed += o.Shed
		if op != OpRegister { // registration is set-up
			shed = append(shed, s.shed...)
		}
		switch {
		case s.socket:
			acks = append(acks, s.lat...)
		case op != OpConnect && op != OpDisconnect && op != OpDrop && op != OpRegister: // registration is set-up
			rest = append(rest, s.lat...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Op < out[j].Op })
	tot.AckP50ms, tot.AckP99ms, tot.AckMaxms = ms(Percentile(acks, 50)), ms(Percentile(acks, 99)), ms(Percentile(acks, 100))
	tot.RestP50ms, tot.RestP99ms, tot.RestMaxms = ms(Percentile(rest, 50)), ms(Percentile(rest, 99)), ms(Percentile(rest, 100))
	tot.ShedP50ms, tot.ShedMaxms = ms(Percentile(shed, 50)), ms(Percentile(shed, 100))
	return out, tot, append([]string(nil), r.samples...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Percentile returns the p-th percentile (nearest rank) of ds, 0 for none; ds is sorted in place.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(p/100*float64(len(ds))+0.999999) - 1 // ceil(p/100 * n) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(ds) {
		rank = len(ds) - 1
	}
	return ds[rank]
}

// codeList renders the codes map for the table: "JOIN_ERROR×12 RATE_LIMITED×3".
func codeList(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		outcome, code, _ := strings.Cut(k, " ")
		mark := ""
		if outcome == OutcomeShed {
			mark = "shed:"
		} else if outcome != OutcomeExpected {
			mark = "!"
		}
		parts = append(parts, fmt.Sprintf("%s%s×%d", mark, code, m[k]))
	}
	return strings.Join(parts, " ")
}
