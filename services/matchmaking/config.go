package matchmaking

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Level is one relaxation step: once a request has searched for After, the matcher accepts partners
// whose skill is at most SkillWindow away from it. An infinite window (written "*" in ParseLevels)
// also ignores the request's criteria: at that level anyone in the queue will do.
type Level struct {
	After       time.Duration
	SkillWindow float64
}

// Unbounded reports whether the level accepts any skill and ignores criteria.
func (l Level) Unbounded() bool { return math.IsInf(l.SkillWindow, 1) }

// Config tunes the matcher. Zero fields take the DefaultConfig value.
type Config struct {
	// Tick is how often the matcher runs a round over every queue (MATCH_TICK).
	Tick time.Duration
	// StatusInterval is how often a searching request's subscribers get matchmaking:status even
	// when nothing changed (MATCH_STATUS_INTERVAL).
	StatusInterval time.Duration
	// MaxSearchTime: a request still searching after it expires (MATCH_MAX_SEARCH).
	MaxSearchTime time.Duration
	// Levels, sorted by After, the first with After 0 (MATCH_RELAXATION, see ParseLevels).
	Levels []Level
	// Skill bounds and the value of a request without skill.
	SkillMin, SkillMax, DefaultSkill float64
	// Regions allowed (MATCH_REGIONS); empty allows any region id of 1..32 characters a-z, 0-9, '-'.
	Regions []string
	// MaxCriteria bounds the number of criteria keys of one request.
	MaxCriteria int
	// RoundTimeout bounds one queue's round (every store call of it).
	RoundTimeout time.Duration
	// ClaimTimeout: a request left "matching" longer than this by a round that died is recovered
	// (to matched when its lobby exists, else back to searching); a "pending" one is deleted. Must
	// be well above RoundTimeout so a live round is never recovered under its feet.
	ClaimTimeout time.Duration
	// RecentWaits is how many recent matches of a queue the wait estimate looks at;
	// DefaultEstimate is the estimate of a queue without any.
	RecentWaits     int
	DefaultEstimate time.Duration
}

// DefaultLevels widen the window every 10–20 s and accept anyone after a minute.
var DefaultLevels = []Level{
	{After: 0, SkillWindow: 100},
	{After: 10 * time.Second, SkillWindow: 200},
	{After: 20 * time.Second, SkillWindow: 400},
	{After: 40 * time.Second, SkillWindow: 800},
	{After: 60 * time.Second, SkillWindow: math.Inf(1)},
}

// DefaultConfig is the configuration used for zero fields.
func DefaultConfig() Config {
	return Config{
		Tick: time.Second, StatusInterval: 5 * time.Second, MaxSearchTime: 3 * time.Minute,
		Levels:   append([]Level(nil), DefaultLevels...),
		SkillMin: 0, SkillMax: 10000, DefaultSkill: 1000, MaxCriteria: 8,
		RoundTimeout: 10 * time.Second, ClaimTimeout: 60 * time.Second,
		RecentWaits: 20, DefaultEstimate: 30 * time.Second,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Tick <= 0 {
		c.Tick = d.Tick
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = d.StatusInterval
	}
	if c.MaxSearchTime <= 0 {
		c.MaxSearchTime = d.MaxSearchTime
	}
	if len(c.Levels) == 0 {
		c.Levels = d.Levels
	}
	if c.SkillMin == 0 && c.SkillMax == 0 {
		c.SkillMin, c.SkillMax = d.SkillMin, d.SkillMax
	}
	if c.DefaultSkill == 0 {
		c.DefaultSkill = math.Max(c.SkillMin, math.Min(d.DefaultSkill, c.SkillMax))
	}
	if c.MaxCriteria <= 0 {
		c.MaxCriteria = d.MaxCriteria
	}
	if c.RoundTimeout <= 0 {
		c.RoundTimeout = d.RoundTimeout
	}
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = d.ClaimTimeout
	}
	if c.RecentWaits <= 0 {
		c.RecentWaits = d.RecentWaits
	}
	if c.DefaultEstimate <= 0 {
		c.DefaultEstimate = d.DefaultEstimate
	}
	return c
}

// Validate checks a configuration after defaults were applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var problems []error
	if c.Levels[0].After != 0 {
		problems = append(problems, errors.New("matchmaking: the first relaxation level must start at 0s"))
	}
	for i, l := range c.Levels {
		if l.SkillWindow < 0 || math.IsNaN(l.SkillWindow) {
			problems = append(problems, fmt.Errorf("matchmaking: level %d: negative skill window", i))
		}
		if i > 0 && (l.After <= c.Levels[i-1].After || l.SkillWindow < c.Levels[i-1].SkillWindow) {
			problems = append(problems, fmt.Errorf("matchmaking: level %d must start later and be at least as wide as level %d", i, i-1))
		}
	}
	if c.SkillMin > c.SkillMax || c.DefaultSkill < c.SkillMin || c.DefaultSkill > c.SkillMax {
		problems = append(problems, errors.New("matchmaking: want SkillMin <= DefaultSkill <= SkillMax"))
	}
	if c.ClaimTimeout <= c.RoundTimeout {
		problems = append(problems, errors.New("matchmaking: ClaimTimeout must exceed RoundTimeout"))
	}
	for _, r := range c.Regions {
		if !regionRE.MatchString(r) {
			problems = append(problems, fmt.Errorf("matchmaking: region %q: want 1..32 of a-z, 0-9, '-'", r))
		}
	}
	return errors.Join(problems...)
}

var regionRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// ParseLevels reads "0s:100,10s:200,30s:*": comma-separated after:window pairs, "*" an unbounded
// window (any skill, criteria ignored).
func ParseLevels(s string) ([]Level, error) {
	var out []Level
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		after, window, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("relaxation level %q: want <duration>:<window>", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(after))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("relaxation level %q: bad duration", part)
		}
		w := math.Inf(1)
		if window = strings.TrimSpace(window); window != "*" {
			w, err = strconv.ParseFloat(window, 64)
			if err != nil || w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
				return nil, fmt.Errorf("relaxation level %q: bad window", part)
			}
		}
		out = append(out, Level{After: d, SkillWindow: w})
	}
	c := Config{Levels: out}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// LevelAt is the relaxation level of a request that has searched for elapsed.
func (c Config) LevelAt(elapsed time.Duration) int {
	lvl := 0
	for i, l := range c.Levels {
		if elapsed >= l.After {
			lvl = i
		}
	}
	return lvl
}

// lastLevel reports whether lvl is the widest level.
func (c Config) lastLevel(lvl int) bool { return lvl == len(c.Levels)-1 }
