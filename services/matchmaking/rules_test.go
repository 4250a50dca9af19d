package matchmaking

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func cand(id string, skill float64, age time.Duration, crit map[string]any) Candidate {
	return Candidate{ID: id, UserID: "u" + id, Skill: skill, Criteria: crit, CreatedAt: t0.Add(-age)}
}

func ids(groups [][]Candidate) [][]string {
	out := make([][]string, len(groups))
	for i, g := range groups {
		for _, c := range g {
			out[i] = append(out[i], c.ID)
		}
	}
	return out
}

func sameGroups(t *testing.T, got [][]Candidate, want ...[]string) {
	t.Helper()
	g := ids(got)
	if len(g) != len(want) {
		t.Fatalf("groups %v, want %v", g, want)
	}
	for i := range want {
		if len(g[i]) != len(want[i]) {
			t.Fatalf("groups %v, want %v", g, want)
		}
		for j := range want[i] {
			if g[i][j] != want[i][j] {
				t.Fatalf("groups %v, want %v", g, want)
			}
		}
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.Levels = []Level{{0, 100}, {10 * time.Second, 200}, {20 * time.Second, 400}, {30 * time.Second, math.Inf(1)}}
	return c
}

var duel = Sizes{TeamSize: 1, Min: 2, Max: 2}

func TestFormGroupsPairsClosestSkillOldestFirst(t *testing.T) {
	cfg := testConfig()
	cands := []Candidate{
		cand("a", 1000, 5*time.Second, nil),
		cand("b", 1090, 1*time.Second, nil),
		cand("c", 1010, 2*time.Second, nil),
		cand("d", 1500, 4*time.Second, nil),
		cand("e", 1550, 3*time.Second, nil),
		cand("f", 3000, 3*time.Second, nil),
	}
	// a (oldest) takes the closest c, not b; d pairs with e; b and f stay.
	sameGroups(t, FormGroups(cands, duel, t0, cfg), []string{"a", "c"}, []string{"d", "e"})
}

func TestFormGroupsFullLobbiesOnly(t *testing.T) {
	cfg := testConfig()
	sz := Sizes{TeamSize: 2, Min: 4, Max: 4}
	cands := []Candidate{cand("a", 1000, 3*time.Second, nil), cand("b", 1000, 2*time.Second, nil), cand("c", 1000, time.Second, nil)}
	if g := FormGroups(cands, sz, t0, cfg); len(g) != 0 {
		t.Fatalf("3 of 4 players formed %v", ids(g))
	}
	cands = append(cands, cand("d", 1050, 0, nil), cand("e", 1000, 0, nil))
	sameGroups(t, FormGroups(cands, sz, t0, cfg), []string{"a", "b", "c", "e"})
}

func TestRelaxationWidensTheWindow(t *testing.T) {
	cfg := testConfig()
	cands := []Candidate{cand("a", 1000, 0, nil), cand("b", 1250, 0, nil)}
	for _, tc := range []struct {
		after time.Duration
		level int
		match bool
	}{{0, 0, false}, {9 * time.Second, 0, false}, {10 * time.Second, 1, false}, {19 * time.Second, 1, false},
		{20 * time.Second, 2, true}} {
		now := t0.Add(tc.after)
		if lvl := cfg.LevelAt(tc.after); lvl != tc.level {
			t.Fatalf("level after %v = %d, want %d", tc.after, lvl, tc.level)
		}
		if got := len(FormGroups(cands, duel, now, cfg)) == 1; got != tc.match {
			t.Fatalf("after %v: matched=%v, want %v", tc.after, got, tc.match)
		}
		wantPotential := 0
		if tc.match {
			wantPotential = 1
		}
		if p := PotentialMatches(cands[0], cands, now, cfg); p != wantPotential {
			t.Fatalf("after %v: potential %d, want %d", tc.after, p, wantPotential)
		}
	}
}

func TestCriteriaMustAgreeUntilUnbounded(t *testing.T) {
	cfg := testConfig()
	cands := []Candidate{
		cand("a", 1000, 0, map[string]any{"lang": "en"}),
		cand("b", 1000, 0, map[string]any{"lang": "de"}),
		cand("c", 1000, 0, map[string]any{"voice": true}),
	}
	sameGroups(t, FormGroups(cands, duel, t0, cfg), []string{"a", "c"})
	// Three players: a and b disagree, so a, c plus b is refused; at the unbounded level all go.
	trio := Sizes{TeamSize: 1, Min: 3, Max: 3}
	if g := FormGroups(cands, trio, t0, cfg); len(g) != 0 {
		t.Fatalf("disagreeing criteria grouped: %v", ids(g))
	}
	sameGroups(t, FormGroups(cands, trio, t0.Add(30*time.Second), cfg), []string{"a", "b", "c"})
}

func TestCriteriaOfOtherTypesNeverAgree(t *testing.T) {
	cfg := testConfig()
	a := cand("a", 1000, 0, map[string]any{"tags": []any{"x"}})
	b := cand("b", 1000, 0, map[string]any{"tags": []any{"x"}})
	c := cand("c", 1000, 0, map[string]any{"n": 1.0})
	d := cand("d", 1000, 0, map[string]any{"n": "1"})
	if g := FormGroups([]Candidate{a, b}, duel, t0, cfg); len(g) != 0 {
		t.Fatalf("list criteria agreed: %v", ids(g))
	}
	if g := FormGroups([]Candidate{c, d}, duel, t0, cfg); len(g) != 0 {
		t.Fatalf("1 and \"1\" agreed: %v", ids(g))
	}
}

func TestPartialLobbyOnlyAtLastLevel(t *testing.T) {
	cfg := testConfig()
	casual := Sizes{TeamSize: 1, Min: 2, Max: 8}
	cands := []Candidate{cand("a", 1000, 0, nil), cand("b", 1000, 0, nil), cand("c", 1000, 0, nil)}
	if g := FormGroups(cands, casual, t0, cfg); len(g) != 0 {
		t.Fatalf("partial lobby before the last level: %v", ids(g))
	}
	sameGroups(t, FormGroups(cands, casual, t0.Add(30*time.Second), cfg), []string{"a", "b", "c"})
	// Several teams per lobby: a partial lobby is whole teams.
	teams := Sizes{TeamSize: 2, Min: 2, Max: 6}
	sameGroups(t, FormGroups(cands, teams, t0.Add(30*time.Second), cfg), []string{"a", "b"})
	// Never below Min.
	big := Sizes{TeamSize: 1, Min: 4, Max: 8}
	if g := FormGroups(cands, big, t0.Add(time.Hour), cfg); len(g) != 0 {
		t.Fatalf("lobby below min: %v", ids(g))
	}
}

func TestFormGroupsNeverRepeatsAUser(t *testing.T) {
	cfg := testConfig()
	a1 := cand("a1", 1000, 2*time.Second, nil)
	a2 := cand("a2", 1000, time.Second, nil)
	a2.UserID = a1.UserID
	b := cand("b", 1000, 0, nil)
	got := FormGroups([]Candidate{a1, a2, b}, duel, t0, cfg)
	sameGroups(t, got, []string{"a1", "b"})
	if g := FormGroups([]Candidate{a1, a2}, duel, t0, cfg); len(g) != 0 {
		t.Fatalf("a user matched with themself: %v", ids(g))
	}
}

func TestEstimateIsTheMedian(t *testing.T) {
	if got := Estimate(nil, 30*time.Second); got != 30*time.Second {
		t.Fatalf("no history: %v", got)
	}
	if got := Estimate([]time.Duration{9 * time.Second, time.Second, 100 * time.Second}, 0); got != 9*time.Second {
		t.Fatalf("odd: %v", got)
	}
	if got := Estimate([]time.Duration{4 * time.Second, 2 * time.Second, 6 * time.Second, 1000 * time.Second}, 0); got != 5*time.Second {
		t.Fatalf("even: %v", got)
	}
}

func TestParseLevelsAndValidate(t *testing.T) {
	l, err := ParseLevels("0s:50, 5s:150,30s:*")
	if err != nil || len(l) != 3 || l[1].After != 5*time.Second || l[1].SkillWindow != 150 || !l[2].Unbounded() {
		t.Fatalf("ParseLevels = %+v, %v", l, err)
	}
	for _, bad := range []string{"", "5s:100", "0s:100,0s:200", "0s:200,5s:100", "0s:-1", "0s:x", "x:1", "0s"} {
		if _, err := ParseLevels(bad); err == nil {
			t.Fatalf("ParseLevels(%q) accepted", bad)
		}
	}
	c := DefaultConfig()
	c.ClaimTimeout = c.RoundTimeout
	if c.Validate() == nil {
		t.Fatal("claim timeout not above the round timeout accepted")
	}
	c = DefaultConfig()
	c.Regions = []string{"EU"}
	if c.Validate() == nil {
		t.Fatal("upper-case region accepted")
	}
}
