// Package consistency checks the stored state of a Maoga database against the rules the services
// keep, for fault and soak tests: after a process was killed mid-write, after an outage, after
// minutes of random load. Check reads every collection the rules span (it is meant for test-sized
// databases, not production) and sorts what it finds into
//
//   - Problems: states the application does not handle — a lobby over capacity, a user joined in two
//     open lobbies, a host who is not a member, a matched request without its lobby, a document that
//     does not decode. Any problem fails a test.
//   - Tolerated: leftovers of an interrupted multi-document write that the application is built to
//     live with, counted so that a test can report them (and assert they stay bounded). Each kind
//     names the code that handles it.
//
// The rules follow the services: services/lobby (seats, members, host, capacity), services/matchmaking
// (request states), services/chat (lobby chats created on first access, lastMessage moved forward
// after the message is stored), services/notifications (read state), services/friends.
package consistency

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/maoga/maoga/models"
)

// Kinds of tolerated leftovers (Report.Tolerated keys).
const (
	// A seat (lobby_seats) whose lobby does not list the user as a joined member of an open lobby:
	// the write after the seat claim (lobby insert/update) or the release after a leave/close did not
	// happen. lobby.claimSeat takes such a seat over once it is older than a minute; a release that
	// failed while the store was down is retried by the lobby service.
	StaleSeat = "stale seat"
	// A lobby without its lobby chat document: lobby chats are created on first access
	// (chat.Service.ensureLobbyChat), so this is the normal state of a lobby nobody chatted in.
	LobbyWithoutChat = "lobby without chat document"
	// A chat whose lastMessageAt is older than its newest message: the message was stored, the chat
	// update after it was not. Unread counts and read state come from the messages; the next message
	// moves lastMessage forward.
	LaggingLastMessage = "chat lastMessage behind its newest message"
	// A chat notified flag (one unread-message notification per chat until read) without such a
	// notification: the flag was claimed, the notification not stored. Reading the chat clears it.
	OrphanNotifiedFlag = "chat notified flag without notification"
	// A match request stuck in pending or matching by a process that died: the matcher removes stale
	// pending requests and recovers stale claims after its claim timeout.
	StaleMatchClaim = "match request left pending/matching"
	// A message key (clientMessageId, message_keys) whose message is not stored: the key is claimed
	// before the message is inserted and that insert failed or did not happen. The sender's retry with
	// the same key stores the message with the recorded id (services/chat SendOnce).
	KeyWithoutMessage = "message key without its message"
)

// Report is the outcome of Check.
type Report struct {
	Problems  []string
	Tolerated map[string][]string // kind → one line per instance
	// Counts of documents read, by collection.
	Counts map[string]int
	// LobbiesWithoutChat lists open lobbies that have no chat document yet (hex ids).
	LobbiesWithoutChat []string
	// UnreadCountsChecked is how many users' unread-count query was compared (Options.UnreadCountUsers).
	UnreadCountsChecked int
}

// OK reports whether there is no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Err is nil without problems, else an error listing them (at most 20).
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	list := r.Problems
	more := ""
	if len(list) > 20 {
		more = fmt.Sprintf("\n... and %d more", len(list)-20)
		list = list[:20]
	}
	return fmt.Errorf("consistency: %d problems:\n%s%s", len(r.Problems), strings.Join(list, "\n"), more)
}

// Summary is one line: the document counts and the tolerated leftovers by kind.
func (r *Report) Summary() string {
	var parts []string
	for _, c := range sortedKeys(r.Counts) {
		parts = append(parts, fmt.Sprintf("%s=%d", c, r.Counts[c]))
	}
	s := "documents: " + strings.Join(parts, " ")
	if len(r.Tolerated) > 0 {
		var tol []string
		for _, k := range sortedKeys(r.Tolerated) {
			tol = append(tol, fmt.Sprintf("%s=%d", k, len(r.Tolerated[k])))
		}
		s += "; tolerated: " + strings.Join(tol, ", ")
	}
	return s + fmt.Sprintf("; problems=%d", len(r.Problems))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Report) tolerate(kind, format string, args ...any) {
	r.Tolerated[kind] = append(r.Tolerated[kind], fmt.Sprintf(format, args...))
}

// Check reads db (the application database, e.g. store.DB()) and checks it.
func Check(ctx context.Context, db *mongo.Database) (*Report, error) {
	return CheckWith(ctx, db, Options{})
}

// Options tune CheckWith.
type Options struct {
	// UnreadCountUsers bounds the users whose unread-count query is compared with their documents
	// (three queries per user; on the embedded store each scans the notifications, which takes
	// minutes for thousands of users). 0 checks every user; n > 0 checks n users spread evenly over
	// the users sorted by id, every user with unread notifications among the first.
	UnreadCountUsers int
}

// CheckWith is Check with options.
func CheckWith(ctx context.Context, db *mongo.Database, o Options) (*Report, error) {
	r := &Report{Tolerated: map[string][]string{}, Counts: map[string]int{}}
	st := &state{r: r, opts: o}
	loaders := []func(context.Context, *mongo.Database) error{
		st.loadUsers, st.loadLobbies, st.loadSeats, st.loadRequests, st.loadChats, st.loadMessages,
		st.loadNotifications, st.loadFriendships, st.loadMessageKeys,
	}
	for _, load := range loaders {
		if err := load(ctx, db); err != nil {
			return nil, err
		}
	}
	st.checkLobbies()
	st.checkSeats()
	st.checkRequests()
	st.checkChats()
	st.checkMessageKeys()
	if err := st.checkNotifications(ctx, db); err != nil {
		return nil, err
	}
	st.checkFriendships()
	return r, nil
}

type state struct {
	r        *Report
	opts     Options
	users    map[bson.ObjectID]*models.User
	lobbies  map[bson.ObjectID]*models.Lobby
	seats    map[bson.ObjectID]*models.LobbySeat // by user
	requests []*models.MatchRequest
	chats    map[string]*models.Chat
	newest   map[string]*models.Message // newest message of each chat
	messages map[bson.ObjectID]*models.Message
	keys     []*models.MessageKey
	notes    []*models.Notification
	friends  []*models.Friendship
}

// each decodes every document of coll into a fresh T; a document that does not decode is a problem.
func each[T any](ctx context.Context, db *mongo.Database, coll string, r *Report, fn func(*T)) error {
	cur, err := db.Collection(coll).Find(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("consistency: read %s: %w", coll, err)
	}
	defer cur.Close(ctx)
	n := 0
	for cur.Next(ctx) {
		n++
		var v T
		if err := cur.Decode(&v); err != nil {
			r.problem("%s %v: does not decode: %v", coll, cur.Current.Lookup("_id"), err)
			continue
		}
		fn(&v)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("consistency: read %s: %w", coll, err)
	}
	r.Counts[coll] = n
	return nil
}

func (s *state) loadUsers(ctx context.Context, db *mongo.Database) error {
	s.users = map[bson.ObjectID]*models.User{}
	return each(ctx, db, models.UsersCollection, s.r, func(u *models.User) { s.users[u.ID] = u })
}

func (s *state) loadLobbies(ctx context.Context, db *mongo.Database) error {
	s.lobbies = map[bson.ObjectID]*models.Lobby{}
	return each(ctx, db, models.LobbiesCollection, s.r, func(l *models.Lobby) { s.lobbies[l.ID] = l })
}

func (s *state) loadSeats(ctx context.Context, db *mongo.Database) error {
	s.seats = map[bson.ObjectID]*models.LobbySeat{}
	return each(ctx, db, models.LobbySeatsCollection, s.r, func(x *models.LobbySeat) { s.seats[x.UserID] = x })
}

func (s *state) loadRequests(ctx context.Context, db *mongo.Database) error {
	return each(ctx, db, models.MatchRequestsCollection, s.r, func(m *models.MatchRequest) { s.requests = append(s.requests, m) })
}

func (s *state) loadChats(ctx context.Context, db *mongo.Database) error {
	s.chats = map[string]*models.Chat{}
	return each(ctx, db, models.ChatsCollection, s.r, func(c *models.Chat) { s.chats[c.ID] = c })
}

func (s *state) loadMessages(ctx context.Context, db *mongo.Database) error {
	s.newest = map[string]*models.Message{}
	s.messages = map[bson.ObjectID]*models.Message{}
	return each(ctx, db, models.MessagesCollection, s.r, func(m *models.Message) {
		s.messages[m.ID] = m
		if _, ok := s.chats[m.ChatID]; !ok {
			s.r.problem("message %s: its chat %q does not exist", m.ID.Hex(), m.ChatID)
		}
		if cur := s.newest[m.ChatID]; cur == nil || m.CreatedAt.After(cur.CreatedAt) ||
			(m.CreatedAt.Equal(cur.CreatedAt) && m.ID.Hex() > cur.ID.Hex()) {
			s.newest[m.ChatID] = m
		}
	})
}

func (s *state) loadNotifications(ctx context.Context, db *mongo.Database) error {
	return each(ctx, db, models.NotificationsCollection, s.r, func(n *models.Notification) { s.notes = append(s.notes, n) })
}

func (s *state) loadFriendships(ctx context.Context, db *mongo.Database) error {
	return each(ctx, db, models.FriendshipsCollection, s.r, func(f *models.Friendship) { s.friends = append(s.friends, f) })
}

func (s *state) loadMessageKeys(ctx context.Context, db *mongo.Database) error {
	return each(ctx, db, models.MessageKeysCollection, s.r, func(k *models.MessageKey) { s.keys = append(s.keys, k) })
}

func open(l *models.Lobby) bool { return l.Status != models.LobbyClosed }

// checkLobbies: shape, capacity, host, the derived activeMemberIds, one open lobby per user.
func (s *state) checkLobbies() {
	openLobbyOf := map[bson.ObjectID]bson.ObjectID{}
	for _, id := range sortedIDs(s.lobbies) {
		l := s.lobbies[id]
		lid := l.ID.Hex()
		switch l.Status {
		case models.LobbyForming, models.LobbyReady, models.LobbyActive, models.LobbyClosed:
		default:
			s.r.problem("lobby %s: unknown status %q", lid, l.Status)
		}
		if l.Capacity.Min < 1 || l.Capacity.Min > l.Capacity.Max {
			s.r.problem("lobby %s: capacity %+v is not 1 <= min <= max", lid, l.Capacity)
		}
		var joined []bson.ObjectID
		hosts := 0
		allReady := true
		for key, m := range l.Members {
			if m == nil {
				s.r.problem("lobby %s: member %s is null", lid, key)
				continue
			}
			if m.UserID.Hex() != key {
				s.r.problem("lobby %s: member key %s holds user %s", lid, key, m.UserID.Hex())
			}
			switch m.Status {
			case models.MemberJoined:
				joined = append(joined, m.UserID)
				allReady = allReady && m.ReadyStatus
			case models.MemberLeft, models.MemberKicked:
				if m.IsHost || m.ReadyStatus {
					s.r.problem("lobby %s: member %s is %s but still host or ready", lid, key, m.Status)
				}
			default:
				s.r.problem("lobby %s: member %s has unknown status %q", lid, key, m.Status)
			}
			if m.IsHost {
				hosts++
			}
			if _, ok := s.users[m.UserID]; !ok {
				s.r.problem("lobby %s: member %s is no user", lid, key)
			}
		}
		if !open(l) {
			if l.ClosedAt == nil {
				s.r.problem("lobby %s: closed without closedAt", lid)
			}
			if len(l.ActiveMemberIDs) != 0 {
				s.r.problem("lobby %s: closed but activeMemberIds lists %d users", lid, len(l.ActiveMemberIDs))
			}
			continue
		}
		if len(joined) > l.Capacity.Max {
			s.r.problem("lobby %s: %d joined members over capacity.max %d", lid, len(joined), l.Capacity.Max)
		}
		if len(joined) == 0 {
			s.r.problem("lobby %s: open (%s) with no joined member", lid, l.Status)
		}
		if h := l.Members[l.HostID.Hex()]; h == nil || h.Status != models.MemberJoined || !h.IsHost {
			s.r.problem("lobby %s: host %s is not a joined member flagged as host", lid, l.HostID.Hex())
		}
		if hosts != 1 {
			s.r.problem("lobby %s: %d members flagged as host", lid, hosts)
		}
		if !sameIDs(joined, l.ActiveMemberIDs) {
			s.r.problem("lobby %s: activeMemberIds %v do not match the joined members %v", lid, hexes(l.ActiveMemberIDs), hexes(joined))
		}
		if l.Status == models.LobbyReady && (!allReady || len(joined) < l.Capacity.Min) {
			s.r.problem("lobby %s: status ready but not every joined member is ready (or fewer than capacity.min)", lid)
		}
		for _, u := range joined {
			if other, ok := openLobbyOf[u]; ok {
				s.r.problem("user %s: joined member of two open lobbies %s and %s", u.Hex(), other.Hex(), lid)
			}
			openLobbyOf[u] = l.ID
		}
		if _, ok := s.chats[models.LobbyChatID(lid)]; !ok {
			s.r.LobbiesWithoutChat = append(s.r.LobbiesWithoutChat, lid)
			s.r.tolerate(LobbyWithoutChat, "lobby %s", lid)
		}
	}
}

// checkSeats: every joined member of an open lobby holds that lobby's seat (the seat is claimed
// before the lobby lists the user); a seat the lobbies do not back is a tolerated leftover.
func (s *state) checkSeats() {
	for _, id := range sortedIDs(s.lobbies) {
		l := s.lobbies[id]
		if !open(l) {
			continue
		}
		for _, u := range l.ActiveMemberIDs {
			seat := s.seats[u]
			if seat == nil || seat.LobbyID != l.ID {
				s.r.problem("user %s: joined member of open lobby %s without its seat (seat: %v)", u.Hex(), l.ID.Hex(), seatLobby(seat))
			}
		}
	}
	for _, u := range sortedIDs(s.seats) {
		seat := s.seats[u]
		l := s.lobbies[seat.LobbyID]
		if l == nil || !open(l) || l.Members[u.Hex()] == nil || l.Members[u.Hex()].Status != models.MemberJoined {
			s.r.tolerate(StaleSeat, "user %s seat in lobby %s (created %s)", u.Hex(), seat.LobbyID.Hex(), seat.CreatedAt.Format("15:04:05.000"))
		}
	}
}

func seatLobby(seat *models.LobbySeat) string {
	if seat == nil {
		return "none"
	}
	return seat.LobbyID.Hex()
}

// checkRequests: status and active key agree; a matched request's lobby exists, names the request and
// had its user as a member.
func (s *state) checkRequests() {
	for _, m := range s.requests {
		id := m.ID.Hex()
		switch m.Status {
		case models.MatchPending, models.MatchSearching, models.MatchMatching:
			if m.ActiveKey != m.UserID.Hex() {
				s.r.problem("match request %s: %s but activeKey %q is not its user", id, m.Status, m.ActiveKey)
			}
			if m.Status == models.MatchMatching && (m.ClaimToken == "" || m.ClaimedAt == nil) {
				s.r.problem("match request %s: matching without a claim", id)
			}
			if m.Status != models.MatchSearching {
				s.r.tolerate(StaleMatchClaim, "match request %s %s", id, m.Status)
			}
		case models.MatchMatched, models.MatchCancelled, models.MatchExpired:
			if m.ActiveKey != id {
				s.r.problem("match request %s: %s but activeKey %q is not its own id", id, m.Status, m.ActiveKey)
			}
		default:
			s.r.problem("match request %s: unknown status %q", id, m.Status)
		}
		if m.Status != models.MatchMatched {
			continue
		}
		if m.LobbyID == nil || m.MatchedAt == nil {
			s.r.problem("match request %s: matched without lobbyId or matchedAt", id)
			continue
		}
		l := s.lobbies[*m.LobbyID]
		if l == nil {
			s.r.problem("match request %s: matched into lobby %s that does not exist", id, m.LobbyID.Hex())
			continue
		}
		if !containsID(l.MatchRequestIDs, m.ID) {
			s.r.problem("match request %s: lobby %s does not name it", id, l.ID.Hex())
		}
		if l.Members[m.UserID.Hex()] == nil {
			s.r.problem("match request %s: its user %s was never a member of lobby %s", id, m.UserID.Hex(), l.ID.Hex())
		}
	}
}

// checkChats: lobby chats belong to an existing lobby; direct chats have their two participants and
// key; lastMessage points at a message of the chat and is not ahead of the messages.
func (s *state) checkChats() {
	ids := make([]string, 0, len(s.chats))
	for id := range s.chats {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := s.chats[id]
		switch c.Type {
		case models.ChatLobby:
			if c.LobbyID == nil || models.LobbyChatID(c.LobbyID.Hex()) != id || c.Key != id {
				s.r.problem("chat %s: lobby chat with lobbyId %v and key %q", id, c.LobbyID, c.Key)
			} else if s.lobbies[*c.LobbyID] == nil {
				s.r.problem("chat %s: its lobby does not exist", id)
			}
		case models.ChatDirect:
			if len(c.Participants) != 2 || c.Participants[0] == c.Participants[1] {
				s.r.problem("chat %s: direct chat with participants %v", id, hexes(c.Participants))
			}
		default:
			s.r.problem("chat %s: unknown type %q", id, c.Type)
		}
		newest := s.newest[id]
		switch {
		case c.LastMessageID == nil && newest == nil:
		case c.LastMessageID != nil && newest == nil:
			s.r.problem("chat %s: lastMessageId %s but the chat has no message", id, c.LastMessageID.Hex())
		case c.LastMessageID == nil || c.LastMessageAt == nil || *c.LastMessageID != newest.ID:
			if c.LastMessageAt != nil && c.LastMessageAt.After(newest.CreatedAt) {
				s.r.problem("chat %s: lastMessageAt %s is after its newest message", id, c.LastMessageAt)
			} else {
				s.r.tolerate(LaggingLastMessage, "chat %s", id)
			}
		}
	}
}

// checkMessageKeys: a key is its sender's (_id starts with the sender id) and names a message of that
// sender in that chat, or a message not stored yet (tolerated): a resend is answered with the message a
// key names, so a key naming another user's or chat's message would hand that message out.
func (s *state) checkMessageKeys() {
	for _, k := range s.keys {
		if !strings.HasPrefix(k.ID, k.SenderID.Hex()+"|") || len(k.ID) == len(k.SenderID.Hex())+1 {
			s.r.problem("message key %q: not a key of its sender %s", k.ID, k.SenderID.Hex())
			continue
		}
		m := s.messages[k.MessageID]
		switch {
		case m == nil:
			s.r.tolerate(KeyWithoutMessage, "key %q message %s", k.ID, k.MessageID.Hex())
		case m.SenderID != k.SenderID || m.ChatID != k.ChatID:
			s.r.problem("message key %q: names message %s of sender %s in chat %q, not its own in chat %q",
				k.ID, m.ID.Hex(), m.SenderID.Hex(), m.ChatID, k.ChatID)
		}
	}
}

// checkNotifications: read state is whole, the recipient exists, the unread count the API answers
// (a count query) equals the unread documents, and chat notified flags have their notification.
func (s *state) checkNotifications(ctx context.Context, db *mongo.Database) error {
	chatNotes := map[string]bool{} // userId/chatId of chat_message notifications
	for _, n := range s.notes {
		id := n.ID.Hex()
		switch n.Status {
		case models.NotificationUnread:
			if n.ReadAt != nil {
				s.r.problem("notification %s: unread with readAt", id)
			}
		case models.NotificationRead:
			if n.ReadAt == nil {
				s.r.problem("notification %s: read without readAt", id)
			}
		default:
			s.r.problem("notification %s: unknown status %q", id, n.Status)
		}
		if _, ok := s.users[n.UserID]; !ok {
			s.r.problem("notification %s: recipient %s is no user", id, n.UserID.Hex())
		}
		for _, ch := range n.Channels {
			if _, ok := n.Delivery[ch]; !ok {
				s.r.problem("notification %s: channel %s without delivery state", id, ch)
			}
		}
		if chatID, ok := n.Data["chatId"].(string); ok && n.Type == "chat_message" {
			chatNotes[n.UserID.Hex()+"/"+chatID] = true
		}
	}
	// The unread count clients get is a count query; it must agree with the documents it counts. The
	// application may still be writing, so the documents are read between two counts and only a
	// disagreement while the count stood still is a problem.
	coll := db.Collection(models.NotificationsCollection)
	users := sortedIDs(s.users)
	if n := s.opts.UnreadCountUsers; n > 0 && n < len(users) {
		users = s.countSample(users, n)
	}
	s.r.UnreadCountsChecked = len(users)
	for _, u := range users {
		filter := bson.M{"userId": u, "status": models.NotificationUnread}
		before, err := coll.CountDocuments(ctx, filter)
		if err != nil {
			return fmt.Errorf("consistency: count notifications: %w", err)
		}
		docs, err := unreadDocs(ctx, coll, filter)
		if err != nil {
			return err
		}
		after, err := coll.CountDocuments(ctx, filter)
		if err != nil {
			return fmt.Errorf("consistency: count notifications: %w", err)
		}
		if before == after && docs != before {
			s.r.problem("user %s: unread count query says %d, the documents %d", u.Hex(), before, docs)
		}
	}
	for id, c := range s.chats {
		for user, on := range c.Notified {
			if on && !chatNotes[user+"/"+id] {
				s.r.tolerate(OrphanNotifiedFlag, "chat %s user %s", id, user)
			}
		}
	}
	return nil
}

// countSample picks n users for the unread-count check: those with unread notifications first (where a
// wrong count would show), then users spread evenly over the rest.
func (s *state) countSample(users []bson.ObjectID, n int) []bson.ObjectID {
	if n >= len(users) {
		return users
	}
	unread := map[bson.ObjectID]bool{}
	for _, x := range s.notes {
		if x.Status == models.NotificationUnread {
			unread[x.UserID] = true
		}
	}
	var out, rest []bson.ObjectID
	for _, u := range users {
		if unread[u] && len(out) < n {
			out = append(out, u)
		} else {
			rest = append(rest, u)
		}
	}
	if k := n - len(out); k > 0 && len(rest) > 0 {
		step := float64(len(rest)) / float64(k)
		for i := 0; i < k && int(float64(i)*step) < len(rest); i++ {
			out = append(out, rest[int(float64(i)*step)])
		}
	}
	return out
}

// unreadDocs reads the documents filter selects and counts those that really are unread.
func unreadDocs(ctx context.Context, coll *mongo.Collection, filter bson.M) (int64, error) {
	cur, err := coll.Find(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("consistency: read notifications: %w", err)
	}
	var list []models.Notification
	if err := cur.All(ctx, &list); err != nil {
		return 0, fmt.Errorf("consistency: read notifications: %w", err)
	}
	var n int64
	for _, x := range list {
		if x.Status == models.NotificationUnread && x.UserID == filter["userId"] {
			n++
		}
	}
	return n, nil
}

// checkFriendships: two distinct existing users, a known status, one document per pair.
func (s *state) checkFriendships() {
	pairs := map[string]string{}
	for _, f := range s.friends {
		id := f.ID.Hex()
		if f.RequesterID == f.AddresseeID {
			s.r.problem("friendship %s: a user befriends themselves", id)
		}
		for _, u := range []bson.ObjectID{f.RequesterID, f.AddresseeID} {
			if _, ok := s.users[u]; !ok {
				s.r.problem("friendship %s: %s is no user", id, u.Hex())
			}
		}
		switch f.Status {
		case models.FriendshipPending, models.FriendshipRejected:
		case models.FriendshipAccepted:
			if f.AcceptedAt == nil {
				s.r.problem("friendship %s: accepted without acceptedAt", id)
			}
		default:
			s.r.problem("friendship %s: unknown status %q", id, f.Status)
		}
		a, b := f.RequesterID.Hex(), f.AddresseeID.Hex()
		if b < a {
			a, b = b, a
		}
		if other, ok := pairs[a+b]; ok {
			s.r.problem("friendships %s and %s: two documents for one pair", other, id)
		}
		pairs[a+b] = id
	}
}

func sortedIDs[V any](m map[bson.ObjectID]V) []bson.ObjectID {
	out := make([]bson.ObjectID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hex() < out[j].Hex() })
	return out
}

func sameIDs(a, b []bson.ObjectID) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[bson.ObjectID]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func containsID(list []bson.ObjectID, id bson.ObjectID) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

func hexes(ids []bson.ObjectID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Hex()
	}
	return out
}
