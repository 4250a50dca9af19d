package soak

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/maoga/maoga/models"
)

// StoreView is what the comparison needs from the stored state.
type StoreView struct {
	OpenLobbyOf map[string][]string // user id → open lobbies listing the user as a joined member
	Messages    map[string]int      // chat id → stored messages
	Active      []string            // match requests still pending/searching/matching ("id user status")
	Lobbies     map[string]int      // lobby status → count
	JoinedSeats int                 // joined members of open lobbies
}

// ReadStore reads the StoreView from db.
func ReadStore(ctx context.Context, db *mongo.Database) (*StoreView, error) {
	v := &StoreView{OpenLobbyOf: map[string][]string{}, Messages: map[string]int{}, Lobbies: map[string]int{}}
	cur, err := db.Collection(models.LobbiesCollection).Find(ctx, bson.M{})
	if err != nil {
		return nil, err
	}
	var lobbies []models.Lobby
	if err := cur.All(ctx, &lobbies); err != nil {
		return nil, err
	}
	for _, l := range lobbies {
		v.Lobbies[l.Status]++
		if l.Status == models.LobbyClosed {
			continue
		}
		for key, m := range l.Members {
			if m != nil && m.Status == models.MemberJoined {
				v.OpenLobbyOf[key] = append(v.OpenLobbyOf[key], l.ID.Hex())
				v.JoinedSeats++
			}
		}
	}
	mcur, err := db.Collection(models.MessagesCollection).Find(ctx, bson.M{})
	if err != nil {
		return nil, err
	}
	var msgs []models.Message
	if err := mcur.All(ctx, &msgs); err != nil {
		return nil, err
	}
	for _, m := range msgs {
		v.Messages[m.ChatID]++
	}
	rcur, err := db.Collection(models.MatchRequestsCollection).Find(ctx, bson.M{})
	if err != nil {
		return nil, err
	}
	var reqs []models.MatchRequest
	if err := rcur.All(ctx, &reqs); err != nil {
		return nil, err
	}
	for _, r := range reqs {
		switch r.Status {
		case models.MatchPending, models.MatchSearching, models.MatchMatching:
			v.Active = append(v.Active, fmt.Sprintf("%s user %s %s", r.ID.Hex(), r.UserID.Hex(), r.Status))
		}
	}
	return v, nil
}

// Model is what the clients know at the end: each user's lobby ("" none), the users whose state is
// unknown (a state-changing call without an answer), and the chat messages acknowledged or left
// without an answer.
type Model struct {
	LobbyOf   map[string]string
	Uncertain map[string]bool
	Acked     map[string]int
	Unsure    map[string]int
}

// Compare checks the store against the model and returns one line per disagreement:
//   - every certain user sits in exactly the open lobby the client believes (or in none);
//   - no match request is still active (every client cancelled or followed its request to the end);
//   - every chat holds between the acknowledged messages and those plus the unanswered ones: an
//     acknowledged message is stored, a refused one is not.
func Compare(m *Model, s *StoreView) []string {
	var out []string
	users := make([]string, 0, len(m.LobbyOf))
	for u := range m.LobbyOf {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if m.Uncertain[u] {
			continue
		}
		got := s.OpenLobbyOf[u]
		want := m.LobbyOf[u]
		switch {
		case want == "" && len(got) > 0:
			out = append(out, fmt.Sprintf("user %s: in open lobbies %v, the client left every lobby", u, got))
		case want != "" && (len(got) != 1 || got[0] != want):
			out = append(out, fmt.Sprintf("user %s: in open lobbies %v, the client is in %s", u, got, want))
		}
	}
	for _, r := range s.Active {
		out = append(out, "match request still active after every client settled: "+r)
	}
	chats := map[string]bool{}
	for c := range m.Acked {
		chats[c] = true
	}
	for c := range m.Unsure {
		chats[c] = true
	}
	for c := range s.Messages {
		chats[c] = true
	}
	ids := make([]string, 0, len(chats))
	for c := range chats {
		ids = append(ids, c)
	}
	sort.Strings(ids)
	for _, c := range ids {
		n, lo, hi := s.Messages[c], m.Acked[c], m.Acked[c]+m.Unsure[c]
		if n < lo || n > hi {
			out = append(out, fmt.Sprintf("chat %s: %d messages stored, %d acknowledged and %d unanswered", c, n, lo, m.Unsure[c]))
		}
	}
	return out
}
