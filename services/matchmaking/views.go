package matchmaking

import (
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/realtime"
)

// StatusPayload is matchmaking:status. Times are whole seconds.
type StatusPayload struct {
	RequestID string `json:"requestId"`
	// Status is "searching", or "relaxing_criteria" once the relaxation level is above 0.
	Status                 string `json:"status"`
	SearchTimeElapsed      int64  `json:"searchTimeElapsed"`
	EstimatedWaitTime      int64  `json:"estimatedWaitTime"`
	CurrentRelaxationLevel int    `json:"currentRelaxationLevel"`
	PotentialMatchesFound  int    `json:"potentialMatchesFound"`
}

// MatchedPayload is matchmaking:matched, sent to each matched user.
type MatchedPayload struct {
	RequestID string `json:"requestId"`
	LobbyID   string `json:"lobbyId"`
	MatchedAt string `json:"matchedAt"`
	GameID    string `json:"gameId"`
	GameMode  string `json:"gameMode"`
	Region    string `json:"region"`
}

// CancelledPayload is matchmaking:cancelled.
type CancelledPayload struct {
	RequestID   string `json:"requestId"`
	CancelledAt string `json:"cancelledAt"`
}

// ExpiredPayload is matchmaking:expired.
type ExpiredPayload struct {
	RequestID string `json:"requestId"`
	ExpiredAt string `json:"expiredAt"`
}

// ErrorPayload is matchmaking:error.
type ErrorPayload struct {
	RequestID string `json:"requestId"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// Internal event payloads (services/events).

// StartedData is matchmaking.started.
type StartedData struct {
	RequestID string  `json:"requestId"`
	UserID    string  `json:"userId"`
	GameID    string  `json:"gameId"`
	GameMode  string  `json:"gameMode"`
	Region    string  `json:"region"`
	Skill     float64 `json:"skill"`
	CreatedAt string  `json:"createdAt"`
}

// MatchedPlayer is one player of a match.
type MatchedPlayer struct {
	UserID    string `json:"userId"`
	RequestID string `json:"requestId"`
}

// MatchedData is matchmaking.matched, once per match.
type MatchedData struct {
	LobbyID   string          `json:"lobbyId"`
	GameID    string          `json:"gameId"`
	GameMode  string          `json:"gameMode"`
	Region    string          `json:"region"`
	MatchedAt string          `json:"matchedAt"`
	Players   []MatchedPlayer `json:"players"`
}

// CancelledData is matchmaking.cancelled.
type CancelledData struct {
	RequestID   string `json:"requestId"`
	UserID      string `json:"userId"`
	GameID      string `json:"gameId"`
	GameMode    string `json:"gameMode"`
	Region      string `json:"region"`
	CancelledAt string `json:"cancelledAt"`
}

// View is a request as GET/DELETE /api/matchmaking/:id answer it.
type View struct {
	ID             string         `json:"id"`
	MatchRequestID string         `json:"matchRequestId"`
	UserID         string         `json:"userId"`
	GameID         string         `json:"gameId"`
	GameMode       string         `json:"gameMode"`
	Region         string         `json:"region"`
	Skill          *float64       `json:"skill"`
	Criteria       map[string]any `json:"criteria"`
	// Status: searching | relaxing_criteria | matched | cancelled | expired (a request being
	// matched right now shows as searching).
	Status                 string  `json:"status"`
	SearchTimeElapsed      int64   `json:"searchTimeElapsed"`
	CurrentRelaxationLevel int     `json:"currentRelaxationLevel"`
	LobbyID                *string `json:"lobbyId"`
	CreatedAt              string  `json:"createdAt"`
	UpdatedAt              string  `json:"updatedAt"`
	MatchedAt              *string `json:"matchedAt"`
	CancelledAt            *string `json:"cancelledAt"`
	ExpiredAt              *string `json:"expiredAt"`
}

func isoPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := realtime.ISOTime(*t)
	return &s
}

// shownStatus maps stored statuses to what clients see.
func shownStatus(stored string, level int) string {
	switch stored {
	case models.MatchPending, models.MatchSearching, models.MatchMatching:
		if level > 0 {
			return models.MatchRelaxingCriteria
		}
		return models.MatchSearching
	}
	return stored
}

func (s *Service) view(m *models.MatchRequest) View {
	end := s.now()
	level := m.RelaxationLevel
	switch {
	case m.MatchedAt != nil:
		end = *m.MatchedAt
	case m.CancelledAt != nil:
		end = *m.CancelledAt
	case m.ExpiredAt != nil:
		end = *m.ExpiredAt
	default:
		level = s.cfg.LevelAt(end.Sub(m.CreatedAt))
	}
	v := View{ID: m.ID.Hex(), MatchRequestID: m.ID.Hex(), UserID: m.UserID.Hex(), GameID: m.GameID, GameMode: m.GameMode,
		Region: m.Region, Skill: m.Skill, Criteria: m.Criteria, Status: shownStatus(m.Status, level),
		SearchTimeElapsed: seconds(end.Sub(m.CreatedAt)), CurrentRelaxationLevel: level,
		CreatedAt: realtime.ISOTime(m.CreatedAt), UpdatedAt: realtime.ISOTime(m.UpdatedAt),
		MatchedAt: isoPtr(m.MatchedAt), CancelledAt: isoPtr(m.CancelledAt), ExpiredAt: isoPtr(m.ExpiredAt)}
	if m.LobbyID != nil {
		id := m.LobbyID.Hex()
		v.LobbyID = &id
	}
	if v.Criteria == nil {
		v.Criteria = map[string]any{}
	}
	return v
}

func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

func candidateOf(cfg Config, m *models.MatchRequest) Candidate {
	skill := cfg.DefaultSkill
	if m.Skill != nil {
		skill = *m.Skill
	}
	return Candidate{ID: m.ID.Hex(), UserID: m.UserID.Hex(), Skill: skill, Criteria: m.Criteria, CreatedAt: m.CreatedAt}
}

func (s *Service) candidates(ms []models.MatchRequest) []Candidate {
	out := make([]Candidate, len(ms))
	for i := range ms {
		out[i] = candidateOf(s.cfg, &ms[i])
	}
	return out
}

// statusOf computes the status of c among the searching candidates all of its queue.
func (s *Service) statusOf(c Candidate, all []Candidate, estimate time.Duration, now time.Time) StatusPayload {
	level := s.cfg.LevelAt(now.Sub(c.CreatedAt))
	return StatusPayload{RequestID: c.ID, Status: shownStatus(models.MatchSearching, level),
		SearchTimeElapsed: seconds(now.Sub(c.CreatedAt)), EstimatedWaitTime: seconds(estimate),
		CurrentRelaxationLevel: level, PotentialMatchesFound: PotentialMatches(c, all, now, s.cfg)}
}
