package lobby

import (
	"sort"
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/realtime"
)

// View is a lobby as clients see it (REST answers and the `update` of `lobby:update`).
type View struct {
	ID         string          `json:"id"`
	LobbyID    string          `json:"lobbyId"` // = id, the name the socket events use
	GameID     string          `json:"gameId"`
	GameMode   string          `json:"gameMode"`
	HostID     string          `json:"hostId"`
	Status     string          `json:"status"`
	Visibility string          `json:"visibility"`
	Capacity   models.Capacity `json:"capacity"`
	Settings   map[string]any  `json:"settings"`
	// Members lists everyone who ever joined, oldest first, with their status (joined, left, kicked).
	Members   []MemberView `json:"members"`
	CreatedAt string       `json:"createdAt"`
	UpdatedAt string       `json:"updatedAt"`
	ReadyAt   *string      `json:"readyAt"`
	StartedAt *string      `json:"startedAt"`
	ClosedAt  *string      `json:"closedAt"`
}

// MemberView is one member in a View.
type MemberView struct {
	UserID      string  `json:"userId"`
	IsHost      bool    `json:"isHost"`
	ReadyStatus bool    `json:"readyStatus"`
	Status      string  `json:"status"`
	JoinedAt    string  `json:"joinedAt"`
	LeftAt      *string `json:"leftAt"`
}

// NewView renders a lobby.
func NewView(l *models.Lobby) View {
	v := View{
		ID: l.ID.Hex(), LobbyID: l.ID.Hex(), GameID: l.GameID, GameMode: l.GameMode, HostID: l.HostID.Hex(),
		Status: l.Status, Visibility: l.Visibility, Capacity: l.Capacity, Settings: l.Settings,
		Members:   make([]MemberView, 0, len(l.Members)),
		CreatedAt: realtime.ISOTime(l.CreatedAt), UpdatedAt: realtime.ISOTime(l.UpdatedAt),
		ReadyAt: isoPtr(l.ReadyAt), StartedAt: isoPtr(l.StartedAt), ClosedAt: isoPtr(l.ClosedAt),
	}
	if v.Settings == nil {
		v.Settings = map[string]any{}
	}
	for _, m := range membersByAge(l) {
		v.Members = append(v.Members, MemberView{UserID: m.UserID.Hex(), IsHost: m.IsHost,
			ReadyStatus: m.ReadyStatus, Status: m.Status, JoinedAt: realtime.ISOTime(m.JoinedAt),
			LeftAt: isoPtr(m.LeftAt)})
	}
	return v
}

func isoPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := realtime.ISOTime(*t)
	return &s
}

// membersByAge lists every member, longest present first (ties by user id, so the order is stable).
func membersByAge(l *models.Lobby) []*models.LobbyMember {
	out := make([]*models.LobbyMember, 0, len(l.Members))
	for _, m := range l.Members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].JoinedAt.Equal(out[j].JoinedAt) {
			return out[i].JoinedAt.Before(out[j].JoinedAt)
		}
		return out[i].UserID.Hex() < out[j].UserID.Hex()
	})
	return out
}
