package matchmaking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/realtime"
)

// sentStatus is the last matchmaking:status this node sent for a request.
type sentStatus struct {
	queue     models.MatchQueue
	level     int
	potential int
	at        time.Time
}

// Run runs a round over every queue each Tick until ctx ends. One round's failure is logged and
// the next tick tries again.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			switch err := s.RunOnce(ctx); {
			case err == nil || ctx.Err() != nil:
			case errs.IsUnavailable(err): // the store logs its outage once; not every tick
				s.log.Debug("matchmaking round skipped: store unavailable", "err", err)
			default:
				s.log.Error("matchmaking round failed", "err", err)
			}
		}
	}
}

// Background starts Run in a goroutine; stop ends it and waits for the current round to finish.
func (s *Service) Background() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// RunOnce runs one round of every queue that has active requests and whose lease this node gets.
func (s *Service) RunOnce(ctx context.Context) error {
	qs, err := s.reqs.ActiveQueues(ctx)
	if err != nil {
		return err
	}
	var errList []error
	for _, q := range qs {
		if err := s.RunQueue(ctx, q); err != nil {
			errList = append(errList, err)
		}
	}
	s.pruneSent(qs)
	return errors.Join(errList...)
}

// RunQueue runs one round of queue q if the coordinator grants it (a skipped round is no error).
func (s *Service) RunQueue(ctx context.Context, q models.MatchQueue) error {
	lease, ok, err := s.coord.Acquire(ctx, q)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	defer lease.Release()
	// The round's store calls are not cancelled with ctx (Background's stop at shutdown): a write
	// cancelled in flight can still be applied by the store after the round gave up on it — a claim
	// stored after its release, left for ClaimTimeout. The round stops between matches instead.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RoundTimeout)
	defer cancel()
	return s.round(rctx, q, lease.Token(), func() bool { return ctx.Err() != nil })
}

// round: recover stale states, expire, group, match, then tell the searching requests their status.
// Once stopping reports true no further match is formed and no status sent.
func (s *Service) round(ctx context.Context, q models.MatchQueue, leaseToken string, stopping func() bool) error {
	reqs, err := s.reqs.InQueue(ctx, q, models.MatchPending, models.MatchSearching, models.MatchMatching)
	if err != nil {
		return err
	}
	now := s.now()
	var searching []models.MatchRequest
	for i := range reqs {
		m := &reqs[i]
		switch m.Status {
		case models.MatchPending:
			// Start died between insert and searching: the request holds its user's active key.
			if now.Sub(m.CreatedAt) > s.cfg.ClaimTimeout {
				s.log.Warn("removing a stale pending match request", "requestId", m.ID.Hex())
				if err := s.reqs.Delete(ctx, m.ID); err != nil {
					s.log.Error("removing a stale pending match request failed", "requestId", m.ID.Hex(), "err", err)
				}
			}
		case models.MatchMatching:
			if m.ClaimedAt != nil && now.Sub(*m.ClaimedAt) > s.cfg.ClaimTimeout {
				s.recoverClaim(ctx, q, m)
			}
		case models.MatchSearching:
			if now.Sub(m.CreatedAt) >= s.cfg.MaxSearchTime {
				s.expire(ctx, m)
				continue
			}
			searching = append(searching, *m)
		}
	}
	if len(searching) == 0 {
		return nil
	}
	cands := s.candidates(searching)
	byID := make(map[string]*models.MatchRequest, len(searching))
	for i := range searching {
		byID[searching[i].ID.Hex()] = &searching[i]
	}
	matched := map[string]bool{}
	mode, err := s.games.Mode(q.GameID, q.GameMode)
	if err != nil {
		// The mode left the catalogue: its requests cannot match and will expire.
		s.log.Warn("queue of an unknown game mode", "queue", q.String(), "err", err)
	} else {
		sz := Sizes{TeamSize: mode.TeamSize, Min: mode.Capacity.Min, Max: mode.Capacity.Max}
		for _, g := range FormGroups(cands, sz, now, s.cfg) {
			if stopping() {
				return nil
			}
			if s.formMatch(ctx, q, leaseToken, g, byID) {
				for _, c := range g {
					matched[c.ID] = true
				}
			}
		}
	}
	rest := cands[:0:0]
	for _, c := range cands {
		if !matched[c.ID] {
			rest = append(rest, c)
		}
	}
	if stopping() {
		return nil
	}
	s.sendStatuses(ctx, q, rest, now)
	return nil
}

// formMatch claims every request of g, creates the lobby and marks the requests matched. It
// reports whether the match formed; when a claim is lost (cancelled, or claimed by another round)
// the claims it got are released and the group waits for the next round.
func (s *Service) formMatch(ctx context.Context, q models.MatchQueue, leaseToken string, g []Candidate, byID map[string]*models.MatchRequest) bool {
	token := leaseToken + ":" + randomToken()
	claimedAt := s.stamp()
	claimed := make([]*models.MatchRequest, 0, len(g))
	for _, c := range g {
		m := byID[c.ID]
		v := m.Version
		got, err := s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchSearching}, Version: &v},
			bson.M{"status": models.MatchMatching, "claimToken": token, "claimedAt": claimedAt, "updatedAt": claimedAt}, nil)
		if err != nil {
			lost := !errs.Is(err, errs.CodeConflict) && !errs.Is(err, errs.CodeNotFound)
			if lost {
				// The claim may have been stored with its answer lost (the store went away, or the
				// round was cancelled by a shutdown): release it too. Releasing is conditional on this
				// round's token, so a claim that did not happen is left alone.
				claimed = append(claimed, m)
				if ctx.Err() == nil {
					s.log.Error("claiming a match request failed", "requestId", c.ID, "err", err)
				}
			}
			s.release(ctx, claimed, token)
			return false
		}
		claimed = append(claimed, got)
	}
	userIDs := make([]string, len(claimed))
	reqIDs := make([]string, len(claimed))
	for i, m := range claimed {
		userIDs[i], reqIDs[i] = m.UserID.Hex(), m.ID.Hex()
	}
	lobbyID, err := s.lobbies.CreateForMatch(ctx, q.GameID, q.GameMode, userIDs, reqIDs)
	if err != nil {
		// The lobby may exist even so (an answer lost after the write): then the match stands.
		if lid, found, ferr := s.reqs.LobbyIDForRequest(ctx, claimed[0].ID); ferr == nil && found {
			lobbyID = lid.Hex()
		} else {
			s.log.Error("creating the lobby of a match failed; requests go back to searching", "queue", q.String(),
				"requests", reqIDs, "err", err)
			s.dropSeated(ctx, claimed, token, err)
			return false
		}
	}
	lid, ok := models.ParseID(lobbyID)
	if !ok {
		s.log.Error("lobby service returned a bad lobby id", "lobbyId", lobbyID)
		s.release(ctx, claimed, token)
		return false
	}
	// From here the lobby exists: finish every claim even if the round's time is up (a claim left
	// behind is recovered to matched after ClaimTimeout, but the players would wait for it).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RoundTimeout)
	defer cancel()
	matchedAt := s.stamp()
	players := make([]MatchedPlayer, 0, len(claimed))
	for _, m := range claimed {
		if done := s.finish(fctx, m, token, lid, matchedAt); done != nil {
			players = append(players, MatchedPlayer{UserID: done.UserID.Hex(), RequestID: done.ID.Hex()})
		}
	}
	s.publish(fctx, events.MatchmakingMatched, MatchedData{LobbyID: lobbyID, GameID: q.GameID, GameMode: q.GameMode,
		Region: q.Region, MatchedAt: realtime.ISOTime(matchedAt), Players: players})
	return true
}

// finish marks a claimed request matched into lobby lid and tells its user; nil on failure (logged).
func (s *Service) finish(ctx context.Context, m *models.MatchRequest, token string, lid bson.ObjectID, at time.Time) *models.MatchRequest {
	done, err := s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchMatching}, ClaimToken: token},
		bson.M{"status": models.MatchMatched, "lobbyId": lid, "matchedAt": at, "updatedAt": at, "activeKey": m.ID.Hex(),
			"relaxationLevel": s.cfg.LevelAt(at.Sub(m.CreatedAt)), "waitMillis": at.Sub(m.CreatedAt).Milliseconds()},
		bson.M{"claimToken": "", "claimedAt": ""})
	if err != nil {
		s.log.Error("marking a match request matched failed (recovered after the claim timeout)",
			"requestId", m.ID.Hex(), "lobbyId", lid.Hex(), "err", err)
		return nil
	}
	s.forget(done.ID.Hex())
	s.toUser(done.UserID.Hex(), EventMatched, MatchedPayload{RequestID: done.ID.Hex(), LobbyID: lid.Hex(),
		MatchedAt: realtime.ISOTime(at), GameID: done.GameID, GameMode: done.GameMode, Region: done.Region})
	return done
}

// release puts claimed requests back to searching.
func (s *Service) release(ctx context.Context, claimed []*models.MatchRequest, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RoundTimeout)
	defer cancel()
	for _, m := range claimed {
		_, err := s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchMatching}, ClaimToken: token},
			bson.M{"status": models.MatchSearching, "updatedAt": s.stamp()}, bson.M{"claimToken": "", "claimedAt": ""})
		switch {
		case err == nil:
		case errs.Is(err, errs.CodeConflict): // not (or no longer) held with this token: nothing to release
			s.log.Debug("match request claim not held any more", "requestId", m.ID.Hex())
		default:
			s.log.Error("releasing a match request claim failed (recovered after the claim timeout)",
				"requestId", m.ID.Hex(), "err", err)
		}
	}
}

// dropSeated runs after the lobby could not be created: a user who sits in an open lobby by now
// (joined one while searching) can never be matched, so their request is cancelled; the others go
// back to searching. The lobby service names the seated users in the CONFLICT's details.userIds;
// without them each user's seat is asked for.
func (s *Service) dropSeated(ctx context.Context, claimed []*models.MatchRequest, token string, cause error) {
	named := map[string]bool{}
	if e, ok := errs.As(cause); ok && e.Code == errs.CodeConflict {
		switch ids := e.Details["userIds"].(type) {
		case []string:
			for _, id := range ids {
				named[id] = true
			}
		case []any:
			for _, id := range ids {
				if s, ok := id.(string); ok {
					named[s] = true
				}
			}
		}
	}
	var back []*models.MatchRequest
	for _, m := range claimed {
		seated := named[m.UserID.Hex()]
		var err error
		if len(named) == 0 {
			seated, err = s.lobbies.InOpenLobby(ctx, m.UserID.Hex())
		}
		if err != nil || !seated {
			back = append(back, m)
			continue
		}
		now := s.stamp()
		_, err = s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchMatching}, ClaimToken: token},
			bson.M{"status": models.MatchCancelled, "cancelledAt": now, "updatedAt": now, "activeKey": m.ID.Hex()},
			bson.M{"claimToken": "", "claimedAt": ""})
		if err != nil {
			back = append(back, m)
			continue
		}
		s.log.Info("match request cancelled: its user sits in an open lobby", "requestId", m.ID.Hex())
		s.forget(m.ID.Hex())
		s.toUser(m.UserID.Hex(), EventCancelled, CancelledPayload{RequestID: m.ID.Hex(), CancelledAt: realtime.ISOTime(now)})
	}
	s.release(ctx, back, token)
}

// recoverClaim finishes a claim whose round died: matched when its lobby exists, else searching.
func (s *Service) recoverClaim(ctx context.Context, q models.MatchQueue, m *models.MatchRequest) {
	lid, found, err := s.reqs.LobbyIDForRequest(ctx, m.ID)
	if err != nil {
		s.log.Error("recovering a stale claim failed", "requestId", m.ID.Hex(), "err", err)
		return
	}
	s.log.Warn("recovering a stale match request claim", "requestId", m.ID.Hex(), "queue", q.String(), "lobbyFound", found)
	if found {
		s.finish(ctx, m, m.ClaimToken, lid, s.stamp())
		return
	}
	s.release(ctx, []*models.MatchRequest{m}, m.ClaimToken)
}

// expire ends a request that searched for MaxSearchTime (a cancel that came first wins).
func (s *Service) expire(ctx context.Context, m *models.MatchRequest) {
	now := s.stamp()
	got, err := s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchSearching}},
		bson.M{"status": models.MatchExpired, "expiredAt": now, "updatedAt": now, "activeKey": m.ID.Hex(),
			"relaxationLevel": s.cfg.LevelAt(now.Sub(m.CreatedAt))}, nil)
	if err != nil {
		if !errs.Is(err, errs.CodeConflict) && !errs.Is(err, errs.CodeNotFound) {
			s.log.Error("expiring a match request failed", "requestId", m.ID.Hex(), "err", err)
		}
		return
	}
	s.forget(got.ID.Hex())
	s.toUser(got.UserID.Hex(), EventExpired, ExpiredPayload{RequestID: got.ID.Hex(), ExpiredAt: realtime.ISOTime(now)})
}

// sendStatuses emits matchmaking:status to match:<id> for each searching request whose status
// changed (level, potential matches) or was last sent StatusInterval ago.
func (s *Service) sendStatuses(ctx context.Context, q models.MatchQueue, cands []Candidate, now time.Time) {
	type due struct {
		c  Candidate
		st StatusPayload
	}
	var list []due
	s.mu.Lock()
	live := make(map[string]bool, len(cands))
	for _, c := range cands {
		live[c.ID] = true
	}
	for id, st := range s.lastSent { // finished elsewhere (another node, or matched this round)
		if st.queue == q && !live[id] {
			delete(s.lastSent, id)
		}
	}
	for _, c := range cands {
		st := s.statusOf(c, cands, 0, now)
		prev, ok := s.lastSent[c.ID]
		if ok && prev.level == st.CurrentRelaxationLevel && prev.potential == st.PotentialMatchesFound &&
			now.Sub(prev.at) < s.cfg.StatusInterval {
			continue
		}
		s.lastSent[c.ID] = sentStatus{queue: q, level: st.CurrentRelaxationLevel, potential: st.PotentialMatchesFound, at: now}
		list = append(list, due{c, st})
	}
	s.mu.Unlock()
	if len(list) == 0 {
		return
	}
	est := s.cfg.DefaultEstimate
	if waits, err := s.reqs.RecentWaits(ctx, q, s.cfg.RecentWaits); err != nil {
		s.log.Warn("recent waits of a queue unavailable; using the default estimate", "queue", q.String(), "err", err)
	} else {
		est = Estimate(waits, s.cfg.DefaultEstimate)
	}
	for _, d := range list {
		d.st.EstimatedWaitTime = seconds(est)
		if err := s.emit.ToRoom(MatchRoom(d.c.ID)).Emit(EventStatus, d.st); err != nil {
			s.log.Warn("emit failed", "event", EventStatus, "requestId", d.c.ID, "err", err)
		}
	}
}

// forget drops the status bookkeeping of a finished request.
func (s *Service) forget(requestID string) {
	s.mu.Lock()
	delete(s.lastSent, requestID)
	s.mu.Unlock()
}

// pruneSent drops bookkeeping of queues that have no active requests any more (requests finished
// on another node are never forgotten by this one otherwise).
func (s *Service) pruneSent(active []models.MatchQueue) {
	keep := make(map[models.MatchQueue]bool, len(active))
	for _, q := range active {
		keep[q] = true
	}
	s.mu.Lock()
	for id, st := range s.lastSent {
		if !keep[st.queue] {
			delete(s.lastSent, id)
		}
	}
	s.mu.Unlock()
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RecoverAfterCrash ends what a dead process left half-done, without waiting for ClaimTimeout: a
// pending request (Start died between insert and searching) is removed, a claimed one (a round died
// between claim and finish) becomes matched when its lobby exists, else searching again. Call it only
// before the matcher runs and while no other process writes this store (the embedded store at
// start-up): a live round's claims would be taken from under it. It returns how many it recovered.
func (s *Service) RecoverAfterCrash(ctx context.Context) (int, error) {
	qs, err := s.reqs.ActiveQueues(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		reqs, err := s.reqs.InQueue(ctx, q, models.MatchPending, models.MatchMatching)
		if err != nil {
			return n, err
		}
		for i := range reqs {
			m := &reqs[i]
			if m.Status == models.MatchPending {
				if err := s.reqs.Delete(ctx, m.ID); err != nil {
					return n, err
				}
			} else {
				s.recoverClaim(ctx, q, m)
			}
			n++
		}
	}
	return n, nil
}
