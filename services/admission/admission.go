// Package admission sheds load: an adaptive concurrency limiter in the manner of Netflix's
// concurrency-limits (AIMD) and Envoy's adaptive concurrency filter. At most Limit requests run at
// once; a request that finds no free slot waits in a FIFO queue for at most QueueWait and is then
// refused with ErrBusy (SERVICE_UNAVAILABLE, "server busy, retry later"), quickly, instead of
// queueing behind an overloaded store until its timeout.
//
// The limit adapts to the latency of completed requests (time from admission to Done, the queue
// wait not counted), sampled in windows as Netflix's WindowedLimit does around its AIMD limit: a
// window closes once it holds as many completions as the limit (at least MinWindow), or after
// MaxWindowTime with at least one. Then
//
//   - when the window's average latency is above TargetLatency the limit is multiplied by Backoff
//     (0.9), or by target/average when that is lower (but never below 0.5: at most halved), so a
//     limit grown on cheap requests comes down within a few windows when the store slows down; one
//     decrease per window, so one burst of slow requests counts once;
//   - otherwise it grows by one, which is 1/limit per fast completion;
//   - both only when the limit was in use (at least half of it in flight at some completion of the
//     window): a lightly loaded server neither grows a limit it has not tried nor shrinks it for a
//     slow request that concurrency did not slow down;
//   - the limit stays within [Min, Max].
//
// The average, not each request, decides: a mix of quick reads and heavier writes is judged by what
// the store costs on the whole, and a limit that lets every request through while some of them are
// slow keeps growing no more than one that holds latency at the target.
//
// It knows nothing of what the requests do; handlers/rest and handlers/socket put it around the
// calls that reach the store. An overload episode (refusals, until QuietPeriod passes without one)
// is logged twice: a WARN line when it starts and an INFO line, with the number refused, when a
// later request finds it over.
package admission

import (
	"container/list"
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/maoga/maoga/services/errs"
)

// MsgBusy is the message of a refusal.
const MsgBusy = "server busy, retry later"

// ErrBusy is the refusal: SERVICE_UNAVAILABLE. Nothing of a refused request ran.
var ErrBusy = errs.New(errs.CodeServiceUnavailable, MsgBusy)

// RetryAfter is what a refused REST call is told to wait (its Retry-After header): the queue is
// short, a refusal means "come back in a moment", not "the store is down".
const RetryAfter = time.Second

// Defaults of Options.
const (
	DefaultMax           = 100 // the store client's connection pool: more in flight only queue there
	DefaultMin           = 4
	DefaultInitial       = 20
	DefaultTargetLatency = 300 * time.Millisecond
	DefaultQueueWait     = 300 * time.Millisecond
	DefaultBackoff       = 0.9
	DefaultQuietPeriod   = 5 * time.Second
	// MinWindow is the fewest completions a window holds (unless MaxWindowTime closes it).
	MinWindow = 10
	// MaxWindowTime closes a window that has at least one completion: a server answering slowly is
	// judged within about a second even when few requests complete.
	MaxWindowTime = time.Second
)

// Options configure a Limiter. Zero values take the defaults above.
type Options struct {
	// Max and Min bound the limit (LIMIT_INFLIGHT_MAX, LIMIT_INFLIGHT_MIN); Min is raised to 1 and
	// lowered to Max.
	Max, Min int
	// Initial is the limit at start, clamped to [Min, Max]; default DefaultInitial.
	Initial int
	// TargetLatency: a completed request slower than this lowers the limit
	// (LIMIT_INFLIGHT_TARGET_LATENCY).
	TargetLatency time.Duration
	// QueueWait is how long a request waits for a slot before it is refused
	// (LIMIT_INFLIGHT_QUEUE_WAIT). Negative: no wait, refused at once.
	QueueWait time.Duration
	// Backoff multiplies the limit on a slow completion, in (0, 1).
	Backoff float64
	// Gate, when set, is asked first: a non-nil error refuses the request at once with that error,
	// without a slot and without counting as overload (the app passes the store's outage state, so
	// that no request waits for a database known to be down).
	Gate func() error
	// QuietPeriod without a refusal ends an overload episode (logging).
	QuietPeriod time.Duration
	Logger      *slog.Logger
	// Now is the clock of latencies and episodes; default time.Now. (The queue wait uses real timers.)
	Now func() time.Time
}

// Limiter is the adaptive concurrency limiter. A nil *Limiter admits everything (admission off).
type Limiter struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	limit    float64 // effective limit: floor(limit)
	inflight int
	waiters  list.List // of *waiter, oldest first
	// the sample window
	winStart    time.Time
	winN        int
	winSum      time.Duration
	winMaxInUse int // most requests in flight at a completion of the window
	refused     uint64
	// overload episode
	overloaded  bool
	episodeFrom time.Time
	lastRefusal time.Time
	episodeN    uint64
}

type waiter struct {
	ch      chan struct{} // closed when a slot is handed over
	granted bool          // under Limiter.mu
}

// New returns a limiter. Max must be positive (callers keep a nil *Limiter for "off").
func New(o Options) *Limiter {
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if o.Min <= 0 {
		o.Min = DefaultMin
	}
	o.Min = min(o.Min, o.Max)
	if o.Initial <= 0 {
		o.Initial = DefaultInitial
	}
	o.Initial = max(o.Min, min(o.Initial, o.Max))
	if o.TargetLatency <= 0 {
		o.TargetLatency = DefaultTargetLatency
	}
	if o.QueueWait == 0 {
		o.QueueWait = DefaultQueueWait
	}
	if !(o.Backoff > 0 && o.Backoff < 1) {
		o.Backoff = DefaultBackoff
	}
	if o.QuietPeriod <= 0 {
		o.QuietPeriod = DefaultQuietPeriod
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Limiter{o: o, log: log.With("component", "admission"), limit: float64(o.Initial), winStart: o.Now()}
}

// Ticket is an admitted request's slot; Done frees it and reports the request's latency.
type Ticket struct {
	l     *Limiter
	start time.Time
	once  sync.Once
}

// Done frees the slot (once; later calls do nothing). Call it when the request's work is over.
func (t *Ticket) Done() {
	if t == nil || t.l == nil {
		return
	}
	t.once.Do(func() { t.l.release(t.start) })
}

// Acquire admits the request or refuses it with ErrBusy after waiting at most QueueWait for a slot
// (or when ctx ends first: the caller went away). On success the caller must call Done.
// A nil *Limiter admits at once.
func (l *Limiter) Acquire(ctx context.Context) (*Ticket, error) {
	if l == nil {
		return nil, nil
	}
	if l.o.Gate != nil {
		if err := l.o.Gate(); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	now := l.o.Now()
	l.endEpisodeIfQuiet(now)
	if l.waiters.Len() == 0 && l.inflight < l.effective() {
		l.inflight++
		l.mu.Unlock()
		return &Ticket{l: l, start: now}, nil
	}
	if l.o.QueueWait < 0 {
		l.refuseLocked(now)
		l.mu.Unlock()
		return nil, ErrBusy
	}
	w := &waiter{ch: make(chan struct{})}
	e := l.waiters.PushBack(w)
	l.mu.Unlock()

	timer := time.NewTimer(l.o.QueueWait)
	defer timer.Stop()
	var gone bool
	select {
	case <-w.ch:
		return &Ticket{l: l, start: l.o.Now()}, nil
	case <-timer.C:
	case <-ctx.Done():
		gone = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted { // handed a slot while the timer fired
		return &Ticket{l: l, start: l.o.Now()}, nil
	}
	l.waiters.Remove(e)
	if !gone {
		l.refuseLocked(l.o.Now())
	}
	return nil, ErrBusy
}

func (l *Limiter) effective() int { return int(l.limit) }

// release ends a request admitted at start: its latency goes into the window, a full window adapts
// the limit, and freed slots go to the waiters.
func (l *Limiter) release(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.o.Now()
	l.winN++
	l.winSum += now.Sub(start)
	l.winMaxInUse = max(l.winMaxInUse, l.inflight)
	l.inflight--
	if l.winN >= max(l.effective(), MinWindow) || now.Sub(l.winStart) >= MaxWindowTime {
		inUse := float64(l.winMaxInUse)*2 >= l.limit
		switch avg := l.winSum / time.Duration(l.winN); {
		case !inUse: // too few requests to tell what the limit does
		case avg > l.o.TargetLatency:
			// ×Backoff, or deeper in proportion to the excess (target/avg, at most halving): a limit
			// grown on cheap requests comes down in a few windows when heavy ones arrive.
			f := math.Min(l.o.Backoff, math.Max(0.5, float64(l.o.TargetLatency)/float64(avg)))
			l.limit = math.Max(float64(l.o.Min), l.limit*f)
		default:
			l.limit = math.Min(float64(l.o.Max), l.limit+1)
		}
		l.winStart, l.winN, l.winSum, l.winMaxInUse = now, 0, 0, 0
	}
	for l.waiters.Len() > 0 && l.inflight < l.effective() {
		w := l.waiters.Remove(l.waiters.Front()).(*waiter)
		w.granted = true
		l.inflight++
		close(w.ch)
	}
}

// refuseLocked counts a refusal and logs the start of an overload episode.
func (l *Limiter) refuseLocked(now time.Time) {
	l.refused++
	l.lastRefusal = now
	l.episodeN++
	if !l.overloaded {
		l.overloaded, l.episodeFrom = true, now
		l.log.Warn("overload: refusing requests (SERVICE_UNAVAILABLE) while the in-flight limit is reached",
			"limit", l.effective(), "inFlight", l.inflight, "queued", l.waiters.Len(), "queueWait", l.o.QueueWait)
	}
}

// endEpisodeIfQuiet logs the end of an overload episode once QuietPeriod passed without a refusal.
func (l *Limiter) endEpisodeIfQuiet(now time.Time) {
	if l.overloaded && now.Sub(l.lastRefusal) >= l.o.QuietPeriod {
		l.log.Info("overload over: requests admitted again", "refused", l.episodeN,
			"lasted", l.lastRefusal.Sub(l.episodeFrom).Round(time.Millisecond), "limit", l.effective())
		l.overloaded, l.episodeN = false, 0
	}
}

// Limit is the current limit (requests in flight at most).
func (l *Limiter) Limit() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.effective()
}

// InFlight is the number of admitted requests not yet Done.
func (l *Limiter) InFlight() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// Queued is the number of requests waiting for a slot.
func (l *Limiter) Queued() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters.Len()
}

// Refused is the number of requests refused since start.
func (l *Limiter) Refused() uint64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// Options returns the effective options (defaults applied).
func (l *Limiter) Options() Options { return l.o }
