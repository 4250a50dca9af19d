package matchmaking

import (
	"math"
	"sort"
	"time"
)

// Candidate is a searching request as the grouping rules see it.
type Candidate struct {
	ID        string
	UserID    string
	Skill     float64
	Criteria  map[string]any
	CreatedAt time.Time
}

// Sizes is the shape of a match: Max players make a full lobby; Min the fewest accepted, and only
// once the oldest request of the group has reached the last (widest) relaxation level. When a lobby
// holds several teams (Max a multiple of TeamSize, above it), such a smaller group is whole teams.
type Sizes struct {
	TeamSize, Min, Max int
}

// window is the skill window of level lvl.
func (c Config) window(lvl int) float64 { return c.Levels[lvl].SkillWindow }

// compatible reports whether b may join a group anchored by a (whose level is lvl): b's skill is in
// a's window, and unless the level is unbounded, every criterion both name has the same value.
func (c Config) compatible(a, b *Candidate, lvl int) bool {
	if a.UserID == b.UserID {
		return false
	}
	if math.Abs(a.Skill-b.Skill) > c.window(lvl) {
		return false
	}
	return c.Levels[lvl].Unbounded() || criteriaAgree(a.Criteria, b.Criteria)
}

// criteriaAgree: shared keys must hold equal values. Start only stores scalars; anything else
// (a document written by other means) never agrees, rather than panicking on an uncomparable value.
func criteriaAgree(a, b map[string]any) bool {
	for k, va := range a {
		if vb, ok := b[k]; ok && !scalarEqual(va, vb) {
			return false
		}
	}
	return true
}

func scalarEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	}
	return false
}

// FormGroups splits the searching requests of one queue into matches, oldest request first: each
// still unplaced request in turn is an anchor, and its group is filled with the unplaced requests
// closest in skill among those in the anchor's window (the anchor is the oldest of its group, so its
// window, which only widens with time, is the widest). A candidate joins only if its criteria agree
// with everyone already in the group. Groups that cannot be filled are not formed; their requests
// wait for the next round. No user appears twice, even if cands names one twice.
func FormGroups(cands []Candidate, sz Sizes, now time.Time, cfg Config) [][]Candidate {
	cfg = cfg.withDefaults()
	if sz.Max < 1 || sz.TeamSize < 1 {
		return nil
	}
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := &cands[order[i]], &cands[order[j]]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID < b.ID
	})
	placed := make([]bool, len(cands))
	usedUser := map[string]bool{}
	var groups [][]Candidate
	for _, ai := range order {
		if placed[ai] || usedUser[cands[ai].UserID] {
			continue
		}
		anchor := &cands[ai]
		lvl := cfg.LevelAt(now.Sub(anchor.CreatedAt))
		var pool []int
		for _, j := range order {
			if j != ai && !placed[j] && !usedUser[cands[j].UserID] && cfg.compatible(anchor, &cands[j], lvl) {
				pool = append(pool, j)
			}
		}
		sort.SliceStable(pool, func(x, y int) bool {
			return math.Abs(cands[pool[x]].Skill-anchor.Skill) < math.Abs(cands[pool[y]].Skill-anchor.Skill)
		})
		members := []int{ai}
		seen := map[string]bool{anchor.UserID: true}
		for _, j := range pool {
			if len(members) == sz.Max {
				break
			}
			if seen[cands[j].UserID] || !agreesWithAll(cfg, cands, members, j, lvl) {
				continue
			}
			members = append(members, j)
			seen[cands[j].UserID] = true
		}
		n := len(members)
		if n < sz.Max {
			if !cfg.lastLevel(lvl) {
				continue
			}
			if sz.Max%sz.TeamSize == 0 && sz.Max/sz.TeamSize > 1 {
				n -= n % sz.TeamSize // several teams per lobby: whole teams only
			}
			if n < sz.Min || n < 2 {
				continue
			}
		}
		g := make([]Candidate, 0, n)
		for _, m := range members[:n] {
			placed[m] = true
			usedUser[cands[m].UserID] = true
			g = append(g, cands[m])
		}
		groups = append(groups, g)
	}
	return groups
}

func agreesWithAll(cfg Config, cands []Candidate, members []int, j, lvl int) bool {
	if cfg.Levels[lvl].Unbounded() {
		return true
	}
	for _, m := range members {
		if !criteriaAgree(cands[m].Criteria, cands[j].Criteria) {
			return false
		}
	}
	return true
}

// PotentialMatches counts the other candidates c could be grouped with at its current level (what
// matchmaking:status shows as potentialMatchesFound).
func PotentialMatches(c Candidate, all []Candidate, now time.Time, cfg Config) int {
	cfg = cfg.withDefaults()
	lvl := cfg.LevelAt(now.Sub(c.CreatedAt))
	n := 0
	for i := range all {
		if all[i].ID != c.ID && cfg.compatible(&c, &all[i], lvl) {
			n++
		}
	}
	return n
}

// Estimate is the expected total wait in a queue: the median of its recent waits, fallback when
// there are none.
func Estimate(recent []time.Duration, fallback time.Duration) time.Duration {
	if len(recent) == 0 {
		return fallback
	}
	s := append([]time.Duration(nil), recent...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}
