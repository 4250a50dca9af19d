package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/maoga/maoga/clienttest"
)

// User is a registered account of the soak.
type User struct {
	ID, Name, Token string
	Index           int
}

// world is what the virtual clients share.
type world struct {
	cfg   Config
	api   *API
	rec   *Recorder
	users []*User

	mu      sync.Mutex
	lobbies []string       // recently created lobbies, for joins (bounded)
	acked   map[string]int // chat id → messages acknowledged ok
	unsure  map[string]int // chat id → messages without an answer (stored or not)
	// connection counters
	recovered, notRecovered int
}

func newWorld(cfg Config, api *API, rec *Recorder, users []*User) *world {
	return &world{cfg: cfg, api: api, rec: rec, users: users, acked: map[string]int{}, unsure: map[string]int{}}
}

// maxLobbies bounds the shared list of joinable lobbies.
const maxLobbies = 400

func (w *world) addLobby(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lobbies = append(w.lobbies, id)
	if len(w.lobbies) > maxLobbies {
		w.lobbies = append([]string(nil), w.lobbies[len(w.lobbies)-maxLobbies:]...)
	}
}

func (w *world) dropLobby(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, l := range w.lobbies {
		if l == id {
			w.lobbies = append(w.lobbies[:i], w.lobbies[i+1:]...)
			return
		}
	}
}

func (w *world) randomLobby(rng *rand.Rand) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lobbies) == 0 {
		return ""
	}
	return w.lobbies[rng.IntN(len(w.lobbies))]
}

func (w *world) countMessage(chatID string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok {
		w.acked[chatID]++
	} else {
		w.unsure[chatID]++
	}
}

// Peers is how many other users each user chats with directly (users Index+1 … Index+Peers): a
// connection joins at most Peers+1 chats, under CHAT_MAX_JOINED.
const Peers = 5

// vclient is one virtual user: its account, its connection and what it knows of its own state.
// Only its own goroutine touches it (the event callbacks only send on events).
type vclient struct {
	w    *world
	u    *User
	rng  *rand.Rand
	conn *clienttest.Client

	chats      map[string]bool // chat rooms the current connection joined
	lobby      string          // the open lobby the user sits in ("" none), as far as it knows
	subscribed bool            // the current connection joined the lobby's room
	req        string          // the user's searching match request ("" none)
	direct     map[string]string
	// uncertain: a call that changes lobby or match state got no answer, so the client no longer
	// knows its state; the user is left out of the store comparison (the timeout fails the run).
	uncertain bool

	events chan matchEvent
	// phase ends the current phase: the client stops taking new steps and stops pausing. Calls in
	// flight are not cancelled by it (they run under the run's context and OpTimeout): a client that
	// gave up mid-request would leave the server an interrupted write, which is a fault test's
	// business, not this one's.
	phase context.Context
}

type matchEvent struct {
	name, requestID, lobbyID string
}

func newClient(w *world, u *User, seed uint64) *vclient {
	return &vclient{w: w, u: u, rng: rand.New(rand.NewPCG(seed, uint64(u.Index))), chats: map[string]bool{},
		direct: map[string]string{}, events: make(chan matchEvent, 16)}
}

func (v *vclient) connected() bool {
	if v.conn == nil {
		return false
	}
	select {
	case <-v.conn.Done():
		return false
	default:
		return true
	}
}

// attach registers the callbacks of the match events on a new connection.
func (v *vclient) attach(c *clienttest.Client) {
	for _, name := range []string{"matchmaking:matched", "matchmaking:expired", "matchmaking:cancelled"} {
		name := name
		c.On(name, func(args []json.RawMessage) {
			var p struct {
				RequestID string `json:"requestId"`
				LobbyID   string `json:"lobbyId"`
			}
			if len(args) > 0 && json.Unmarshal(args[0], &p) == nil {
				select {
				case v.events <- matchEvent{name, p.RequestID, p.LobbyID}:
				default: // full: the client finds out with GET /api/matchmaking/:id
				}
			}
		})
	}
}

// drainEvents applies the match events that arrived since the last step.
func (v *vclient) drainEvents() {
	for {
		select {
		case ev := <-v.events:
			if ev.requestID != v.req || v.req == "" {
				continue
			}
			switch ev.name {
			case "matchmaking:matched":
				v.setLobby(ev.lobbyID)
			}
			v.req = ""
		default:
			return
		}
	}
}

func (v *vclient) setLobby(id string) {
	if v.lobby != "" {
		delete(v.chats, "lobby:"+v.lobby)
	}
	v.lobby, v.subscribed = id, false
}

func (v *vclient) dialOptions() clienttest.Options {
	return clienttest.Options{Auth: map[string]any{"token": v.u.Token}, MaxBuffered: 2, PingGrace: 5 * time.Second}
}

// connect opens a fresh connection.
func (v *vclient) connect(ctx context.Context) bool {
	dctx, cancel := context.WithTimeout(ctx, v.w.cfg.OpTimeout)
	defer cancel()
	start := time.Now()
	c, err := clienttest.Dial(dctx, v.w.api.Base, v.dialOptions())
	if err != nil {
		if ctx.Err() != nil {
			return false // the phase ended
		}
		code := "CONNECT_FAILED"
		if errors.Is(err, context.DeadlineExceeded) {
			code = "TIMEOUT"
		}
		v.w.rec.Record(OpConnect, false, code, err.Error(), time.Since(start))
		return false
	}
	v.w.rec.Record(OpConnect, false, "", "", time.Since(start))
	v.attach(c)
	v.conn = c
	v.chats, v.subscribed = map[string]bool{}, false
	return true
}

// disconnect closes the connection the polite way (DISCONNECT packet).
func (v *vclient) disconnect() {
	if v.conn != nil {
		start := time.Now()
		v.conn.Close()
		v.w.rec.Record(OpDisconnect, false, "", "", time.Since(start))
		v.conn = nil
	}
}

// dropAndRecover drops the transport without a goodbye, waits a little and reconnects asking for
// connection state recovery: recovered, the socket keeps its rooms.
func (v *vclient) dropAndRecover(ctx context.Context) {
	old := v.conn
	old.CloseTransport()
	v.sleep(ctx, time.Duration(100+v.rng.IntN(900))*time.Millisecond)
	if ctx.Err() != nil || (v.phase != nil && v.phase.Err() != nil) {
		v.conn = nil
		return
	}
	dctx, cancel := context.WithTimeout(ctx, v.w.cfg.OpTimeout)
	defer cancel()
	start := time.Now()
	c, err := old.Reconnect(dctx, v.w.api.Base)
	if err != nil {
		v.conn = nil
		if ctx.Err() == nil {
			code := "CONNECT_FAILED"
			if errors.Is(err, context.DeadlineExceeded) {
				code = "TIMEOUT"
			}
			v.w.rec.Record(OpDrop, false, code, err.Error(), time.Since(start))
		}
		return
	}
	v.w.rec.Record(OpDrop, false, "", "", time.Since(start))
	v.attach(c)
	v.conn = c
	v.w.mu.Lock()
	if c.Recovered() {
		v.w.recovered++
	} else {
		v.w.notRecovered++
	}
	v.w.mu.Unlock()
	if !c.Recovered() {
		v.chats, v.subscribed = map[string]bool{}, false
	}
}

// ack emits event with an ack and records the outcome; ok reports success.
func (v *vclient) ack(ctx context.Context, op, event string, payload any) (ok bool, code string, body json.RawMessage) {
	actx, cancel := context.WithTimeout(ctx, v.w.cfg.OpTimeout)
	defer cancel()
	start := time.Now()
	args, err := v.conn.EmitWithAck(actx, event, payload)
	took := time.Since(start)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return false, "ENDED", nil // the phase ended mid-wait: not an outcome
		case errors.Is(err, context.DeadlineExceeded):
			code = "TIMEOUT"
		case errors.Is(err, clienttest.ErrDisconnected):
			code = "DISCONNECTED"
		default:
			code = "EMIT_FAILED"
		}
		v.w.rec.Record(op, true, code, fmt.Sprintf("%s: %v", event, err), took)
		return false, code, nil
	}
	ok, code, msg, body := ackResult(args)
	v.w.rec.Record(op, true, code, event+": "+msg, took)
	return ok, code, body
}

// rest calls the API and records the outcome.
func (v *vclient) rest(ctx context.Context, op, method, path string, body any) Answer {
	a := v.w.api.Call(ctx, method, path, v.u.Token, body)
	if ctx.Err() != nil && (a.Code == "TIMEOUT" || a.Code == "TRANSPORT") {
		a.Code = "ENDED"
		return a
	}
	v.w.rec.Record(op, false, a.Code, fmt.Sprintf("%s %s: %s", method, path, a.Message), a.Took)
	return a
}

// lost reports whether an answer leaves the client not knowing what happened.
func lost(code string) bool {
	return code == "TIMEOUT" || code == "TRANSPORT" || code == "DISCONNECTED" || code == "ENDED" || code == "EMIT_FAILED"
}

// sleep pauses for d, less when the phase or ctx ends.
func (v *vclient) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	phase := v.phase
	if phase == nil {
		phase = ctx
	}
	select {
	case <-ctx.Done():
	case <-phase.Done():
	case <-t.C:
	}
}

// run plays the scenario until phase ends, then closes the connection. Calls run under ctx.
func (v *vclient) run(ctx, phase context.Context) {
	v.phase = phase
	for phase.Err() == nil && ctx.Err() == nil {
		v.step(ctx)
		cfg := v.w.cfg
		think := cfg.ThinkMin
		if span := cfg.ThinkMax - cfg.ThinkMin; span > 0 {
			think += time.Duration(v.rng.Int64N(int64(span)))
		}
		v.sleep(ctx, think)
	}
	v.phase = nil
	v.drainEvents()
	if v.conn != nil {
		// Clients leave over Config.Leave, not all in the same millisecond: each disconnect writes
		// presence to the store, and a thousand at once time out on the embedded store.
		if l := v.w.cfg.Leave; l > 0 {
			v.sleep(ctx, time.Duration(v.rng.Int64N(int64(l))))
		}
		v.conn.Close()
		v.conn = nil
	}
}

// Kinds of step, chosen by weight among those the client's state allows.
type choice struct {
	name   string
	weight int
}

// Choose picks a step by weight (a weight of 0 leaves it out); "" when none has weight.
func Choose(rng *rand.Rand, cs []choice) string {
	total := 0
	for _, c := range cs {
		total += c.weight
	}
	if total == 0 {
		return ""
	}
	n := rng.IntN(total)
	for _, c := range cs {
		if n < c.weight {
			return c.name
		}
		n -= c.weight
	}
	return ""
}

// choices are the step weights for a client in the given state.
func choices(connected, inLobby, searching bool) []choice {
	w := func(cond bool, n int) int {
		if cond {
			return n
		}
		return 0
	}
	free := !inLobby && !searching
	return []choice{
		{"disconnect", w(connected, 3)},
		{"drop", w(connected, 2)},
		{"status", w(connected, 8)},
		{"lobby_chat", w(connected && inLobby, 25)},
		{"direct_chat", w(connected, 15)},
		{"typing", w(connected, 4)},
		{"lobby_ready", w(connected && inLobby, 5)},
		{"lobby_leave", w(inLobby, 7)},
		{"lobby_create", w(free, 4)},
		{"lobby_join", w(free, 12)},
		{"match_start", w(free, 6)},
		{"match_cancel", w(searching, 5)},
		{"match_wait", w(searching, 5)},
	}
}

func (v *vclient) step(ctx context.Context) {
	v.drainEvents()
	connected := v.connected()
	if !connected {
		if v.conn != nil { // gone without the client closing it: not something the scenario does
			reason, err := v.conn.WaitDisconnect(ctx)
			v.w.rec.Record(OpConnect, false, "CONNECTION_LOST", fmt.Sprintf("connection lost: %s %v", reason, err), 0)
			v.conn = nil
		}
		v.connect(ctx)
		return
	}
	switch Choose(v.rng, choices(connected, v.lobby != "", v.req != "")) {
	case "disconnect":
		v.disconnect()
		v.sleep(ctx, time.Duration(500+v.rng.IntN(3000))*time.Millisecond)
	case "drop":
		v.dropAndRecover(ctx)
	case "status":
		st := []string{"online", "away", "busy", "in-game"}[v.rng.IntN(4)]
		v.ack(ctx, OpStatus, "user:status", map[string]any{"status": st})
	case "lobby_chat":
		if v.subscribeLobby(ctx) && v.joinChat(ctx, "lobby:"+v.lobby) {
			v.message(ctx, OpLobbyChat, "lobby:"+v.lobby)
		}
	case "direct_chat":
		if id := v.directChat(ctx); id != "" && v.joinChat(ctx, id) {
			v.message(ctx, OpDirectChat, id)
		}
	case "typing":
		for id := range v.chats {
			v.ack(ctx, OpTyping, "chat:typing", map[string]any{"chatId": id, "isTyping": v.rng.IntN(2) == 0})
			break
		}
	case "lobby_ready":
		if v.subscribeLobby(ctx) {
			v.ack(ctx, OpLobbyReady, "lobby:ready", map[string]any{"lobbyId": v.lobby, "isReady": v.rng.IntN(2) == 0})
		}
	case "lobby_leave":
		v.leaveLobby(ctx)
	case "lobby_create":
		v.createLobby(ctx)
	case "lobby_join":
		v.joinLobby(ctx)
	case "match_start":
		v.startMatch(ctx)
	case "match_cancel":
		v.cancelMatch(ctx)
	case "match_wait":
		v.resolveMatch(ctx)
	}
}

// subscribeLobby joins the lobby's room on this connection (lobby:join) once.
func (v *vclient) subscribeLobby(ctx context.Context) bool {
	if v.subscribed {
		return true
	}
	ok, _, _ := v.ack(ctx, OpLobbySubscribe, "lobby:join", map[string]any{"lobbyId": v.lobby})
	v.subscribed = ok
	return ok
}

func (v *vclient) joinChat(ctx context.Context, chatID string) bool {
	if v.chats[chatID] {
		return true
	}
	ok, _, _ := v.ack(ctx, OpChatJoin, "chat:join", map[string]any{"chatId": chatID})
	if ok {
		v.chats[chatID] = true
	}
	return ok
}

func (v *vclient) message(ctx context.Context, op, chatID string) {
	content := fmt.Sprintf("%s says %d", v.u.Name, v.rng.IntN(1_000_000))
	ok, code, _ := v.ack(ctx, op, "chat:message", map[string]any{"chatId": chatID, "content": content})
	switch {
	case ok:
		v.w.countMessage(chatID, true)
	case lost(code):
		v.w.countMessage(chatID, false)
	}
}

// directChat returns the id of the direct chat with one of the user's peers, opening it first.
func (v *vclient) directChat(ctx context.Context) string {
	users := v.w.users
	peer := users[(v.u.Index+1+v.rng.IntN(Peers))%len(users)]
	if peer == v.u {
		return ""
	}
	if id := v.direct[peer.ID]; id != "" {
		return id
	}
	a := v.rest(ctx, OpDirectOpen, "POST", "/api/chats/direct", map[string]any{"userId": peer.ID})
	if a.Code != "" {
		return ""
	}
	var c struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(a.Data, &c) != nil || c.ID == "" {
		v.w.rec.Record(OpDirectOpen, false, "BAD_BODY", string(a.Data), 0)
		return ""
	}
	v.direct[peer.ID] = c.ID
	return c.ID
}

var lobbyModes = []struct{ game, mode string }{{"party-trivia", "casual"}, {"battle-royale", "squad"}}

func (v *vclient) createLobby(ctx context.Context) {
	m := lobbyModes[v.rng.IntN(len(lobbyModes))]
	a := v.rest(ctx, OpLobbyCreate, "POST", "/api/lobbies", map[string]any{"gameId": m.game, "gameMode": m.mode})
	if lost(a.Code) {
		v.uncertain = true
	}
	if a.Code != "" {
		return
	}
	var l struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(a.Data, &l) != nil || l.ID == "" {
		v.w.rec.Record(OpLobbyCreate, false, "BAD_BODY", string(a.Data), 0)
		v.uncertain = true
		return
	}
	v.setLobby(l.ID)
	v.w.addLobby(l.ID)
	if v.connected() {
		v.subscribeLobby(ctx)
	}
}

func (v *vclient) joinLobby(ctx context.Context) {
	id := v.w.randomLobby(v.rng)
	if id == "" {
		v.createLobby(ctx)
		return
	}
	a := v.rest(ctx, OpLobbyJoin, "POST", "/api/lobbies/"+id+"/join", nil)
	if lost(a.Code) {
		v.uncertain = true
	}
	switch {
	case a.Code == "":
		v.setLobby(id)
		if v.connected() {
			v.subscribeLobby(ctx)
		}
	case a.Code == "JOIN_ERROR" && strings.Contains(a.Message, "not open"):
		v.w.dropLobby(id) // closed (everyone left) or started
	}
}

func (v *vclient) leaveLobby(ctx context.Context) {
	id := v.lobby
	a := v.rest(ctx, OpLobbyLeave, "POST", "/api/lobbies/"+id+"/leave", nil)
	if lost(a.Code) {
		v.uncertain = true
	}
	if a.Code == "" {
		v.setLobby("")
	}
}

func (v *vclient) startMatch(ctx context.Context) {
	body := map[string]any{"gameId": "arena-shooter", "gameMode": "1v1",
		"region": []string{"eu", "us"}[v.rng.IntN(2)], "skill": 1000 + v.rng.IntN(1000)}
	if v.rng.IntN(3) == 0 {
		body["gameId"], body["gameMode"] = "battle-royale", "duo"
	}
	a := v.rest(ctx, OpMatchStart, "POST", "/api/matchmaking", body)
	if lost(a.Code) {
		v.uncertain = true
	}
	if a.Code != "" {
		return
	}
	var m struct {
		ID string `json:"matchRequestId"`
	}
	if json.Unmarshal(a.Data, &m) != nil || m.ID == "" {
		v.w.rec.Record(OpMatchStart, false, "BAD_BODY", string(a.Data), 0)
		v.uncertain = true
		return
	}
	v.req = m.ID
	if v.connected() {
		v.ack(ctx, OpMatchSubscribe, "matchmaking:subscribe", map[string]any{"requestId": m.ID})
	}
}

// cancelMatch cancels over the socket or REST (alternately); a refusal means the matcher got there
// first: the request's state is then read.
func (v *vclient) cancelMatch(ctx context.Context) {
	id := v.req
	var code string
	if v.connected() && v.rng.IntN(2) == 0 {
		_, code, _ = v.ack(ctx, OpMatchCancel, "matchmaking:cancel", map[string]any{"requestId": id})
	} else {
		code = v.rest(ctx, OpMatchCancel, "DELETE", "/api/matchmaking/"+id, nil).Code
	}
	switch {
	case code == "":
		v.req = ""
	case lost(code):
		v.resolveMatch(ctx) // the GET tells what became of it
	default:
		v.resolveMatch(ctx)
	}
}

// resolveMatch reads the request: matched puts the user in its lobby, cancelled/expired ends it.
// It reports whether the request is finished.
func (v *vclient) resolveMatch(ctx context.Context) bool {
	id := v.req
	a := v.rest(ctx, OpMatchGet, "GET", "/api/matchmaking/"+id, nil)
	if a.Code != "" {
		return false
	}
	var m struct {
		Status  string  `json:"status"`
		LobbyID *string `json:"lobbyId"`
	}
	if json.Unmarshal(a.Data, &m) != nil {
		v.w.rec.Record(OpMatchGet, false, "BAD_BODY", string(a.Data), 0)
		return false
	}
	switch m.Status {
	case "matched":
		if m.LobbyID == nil {
			v.w.rec.Record(OpMatchGet, false, "BAD_BODY", "matched without lobbyId", 0)
			v.uncertain = true
			v.req = ""
			return true
		}
		v.setLobby(*m.LobbyID)
		v.req = ""
		return true
	case "cancelled", "expired":
		v.req = ""
		return true
	}
	return false
}

// settle ends the user's matchmaking for the store comparison: a searching request is cancelled, or,
// if the matcher is faster, followed until it is matched (the user then sits in its lobby).
func (v *vclient) settle(ctx context.Context) {
	v.drainEvents()
	for i := 0; v.req != "" && i < 20 && ctx.Err() == nil; i++ {
		a := v.rest(ctx, OpMatchCancel, "DELETE", "/api/matchmaking/"+v.req, nil)
		if a.Code == "" {
			v.req = ""
			return
		}
		if v.resolveMatch(ctx) {
			return
		}
		v.sleep(ctx, 300*time.Millisecond)
	}
	if v.req != "" {
		v.uncertain = true
	}
}
