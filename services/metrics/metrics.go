// Package metrics is a small Prometheus registry: counters, gauges and histograms with labels,
// rendered in the Prometheus text exposition format (version 0.0.4) at GET /metrics. It is ours
// rather than client_golang to keep the dependency surface small; it does only what we use.
//
// Label values are bounded: a vector keeps at most MaxSeries label combinations and counts anything
// beyond under the value "_overflow", so a client sending random event names cannot grow memory.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxSeries bounds the label combinations of one vector.
const MaxSeries = 500

// OverflowLabel replaces every label value once a vector is full.
const OverflowLabel = "_overflow"

// DefBuckets are latency buckets in seconds.
var DefBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type kind int

const (
	counterKind kind = iota
	gaugeKind
	histogramKind
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// Registry holds metric families in registration order.
type Registry struct {
	mu       sync.Mutex
	fams     []*family
	byNm     map[string]bool
	onScrape []func()
}

// OnScrape adds fn to what runs at the start of every WriteText, before any value is read: a
// collector reads a snapshot (e.g. runtime.ReadMemStats) there once for several GaugeFuncs.
func (r *Registry) OnScrape(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onScrape = append(r.onScrape, fn)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byNm: map[string]bool{}} }

type family struct {
	name, help string
	kind       kind
	labels     []string
	buckets    []float64

	mu     sync.RWMutex
	series map[string]*series

	// read, for a family registered with GaugeFunc/CounterFunc, is called at every scrape for the
	// one unlabelled value.
	read func() float64
}

type series struct {
	values []string
	val    atomic.Uint64 // float64 bits: counter/gauge value, histogram sum
	count  atomic.Uint64 // histogram observations
	bucket []atomic.Uint64
}

func addFloat(a *atomic.Uint64, d float64) {
	for {
		old := a.Load()
		if a.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

func (r *Registry) register(name, help string, k kind, buckets []float64, labels []string) *family {
	return r.registerFunc(name, help, k, buckets, labels, nil)
}

func (r *Registry) registerFunc(name, help string, k kind, buckets []float64, labels []string, read func() float64) *family {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byNm[name] {
		panic("metrics: duplicate metric " + name)
	}
	r.byNm[name] = true
	f := &family{name: name, help: help, kind: k, labels: labels, buckets: buckets, series: map[string]*series{}, read: read}
	r.fams = append(r.fams, f)
	return f
}

func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s wants %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.RLock()
	s := f.series[key]
	f.mu.RUnlock()
	if s != nil {
		return s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s = f.series[key]; s != nil {
		return s
	}
	if len(f.series) >= MaxSeries {
		over := make([]string, len(values))
		for i := range over {
			over[i] = OverflowLabel
		}
		key = strings.Join(over, "\xff")
		if s = f.series[key]; s != nil {
			return s
		}
		values = over
	}
	s = &series{values: append([]string(nil), values...)}
	if f.kind == histogramKind {
		s.bucket = make([]atomic.Uint64, len(f.buckets))
	}
	f.series[key] = s
	return s
}

// CounterVec is a counter family.
type CounterVec struct{ f *family }

// Counter is one counter series.
type Counter struct{ s *series }

// Counter registers a counter family; name should end in _total.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.register(name, help, counterKind, nil, labels)}
}

// With selects the series for the label values (in registration order).
func (c *CounterVec) With(values ...string) Counter { return Counter{c.f.get(values)} }

// Inc adds 1.
func (c Counter) Inc() { addFloat(&c.s.val, 1) }

// Add adds d (negative d is ignored: counters only go up).
func (c Counter) Add(d float64) {
	if d > 0 {
		addFloat(&c.s.val, d)
	}
}

// Value reads the counter (tests).
func (c Counter) Value() float64 { return math.Float64frombits(c.s.val.Load()) }

// GaugeVec is a gauge family.
type GaugeVec struct{ f *family }

// Gauge is one gauge series.
type Gauge struct{ s *series }

// Gauge registers a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.register(name, help, gaugeKind, nil, labels)}
}

// With selects a series.
func (g *GaugeVec) With(values ...string) Gauge { return Gauge{g.f.get(values)} }

// Set sets the value.
func (g Gauge) Set(v float64) { g.s.val.Store(math.Float64bits(v)) }

// Add adds d (may be negative).
func (g Gauge) Add(d float64) { addFloat(&g.s.val, d) }

// Inc adds 1; Dec subtracts 1.
func (g Gauge) Inc() { g.Add(1) }
func (g Gauge) Dec() { g.Add(-1) }

// Value reads the gauge (tests).
func (g Gauge) Value() float64 { return math.Float64frombits(g.s.val.Load()) }

// GaugeFunc registers an unlabelled gauge whose value read returns at each scrape (runtime and
// process state: goroutines, heap, open file descriptors). read must be safe for concurrent use.
func (r *Registry) GaugeFunc(name, help string, read func() float64) {
	r.registerFunc(name, help, gaugeKind, nil, nil, read)
}

// CounterFunc registers an unlabelled counter whose value read returns at each scrape; read must
// never go down (e.g. CPU seconds, GC cycles).
func (r *Registry) CounterFunc(name, help string, read func() float64) {
	r.registerFunc(name, help, counterKind, nil, nil, read)
}

// HistogramVec is a histogram family.
type HistogramVec struct{ f *family }

// Histogram is one histogram series.
type Histogram struct {
	s       *series
	buckets []float64
}

// Histogram registers a histogram family; buckets are upper bounds, ascending (nil: DefBuckets).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if buckets == nil {
		buckets = DefBuckets
	}
	if !sort.Float64sAreSorted(buckets) {
		panic("metrics: buckets of " + name + " not sorted")
	}
	return &HistogramVec{r.register(name, help, histogramKind, append([]float64(nil), buckets...), labels)}
}

// With selects a series.
func (h *HistogramVec) With(values ...string) Histogram {
	return Histogram{s: h.f.get(values), buckets: h.f.buckets}
}

// Observe records one value.
func (h Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.buckets, v) // first bucket with bound >= v
	if i < len(h.buckets) {
		h.s.bucket[i].Add(1)
	}
	h.s.count.Add(1)
	addFloat(&h.s.val, v)
}

// Count reads the number of observations (tests).
func (h Histogram) Count() uint64 { return h.s.count.Load() }

// ContentType is the Prometheus text format media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText renders every family in the text exposition format.
func (r *Registry) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	r.mu.Lock()
	fams := append([]*family(nil), r.fams...)
	hooks := append([]func(){}, r.onScrape...)
	r.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	for _, f := range fams {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		f.mu.RLock()
		list := make([]*series, 0, len(f.series))
		for _, s := range f.series {
			list = append(list, s)
		}
		f.mu.RUnlock()
		if f.read != nil {
			fmt.Fprintf(bw, "%s %s\n", f.name, num(f.read()))
			continue
		}
		sort.Slice(list, func(i, j int) bool {
			return strings.Join(list[i].values, "\xff") < strings.Join(list[j].values, "\xff")
		})
		if len(list) == 0 && len(f.labels) == 0 && f.kind != histogramKind {
			fmt.Fprintf(bw, "%s 0\n", f.name) // an unlabelled metric exists from the start
		}
		for _, s := range list {
			switch f.kind {
			case counterKind, gaugeKind:
				fmt.Fprintf(bw, "%s%s %s\n", f.name, labelText(f.labels, s.values, "", ""), num(math.Float64frombits(s.val.Load())))
			case histogramKind:
				var cum uint64
				for i, b := range f.buckets {
					cum += s.bucket[i].Load()
					fmt.Fprintf(bw, "%s_bucket%s %d\n", f.name, labelText(f.labels, s.values, "le", num(b)), cum)
				}
				n := s.count.Load()
				fmt.Fprintf(bw, "%s_bucket%s %d\n", f.name, labelText(f.labels, s.values, "le", "+Inf"), n)
				fmt.Fprintf(bw, "%s_sum%s %s\n", f.name, labelText(f.labels, s.values, "", ""), num(math.Float64frombits(s.val.Load())))
				fmt.Fprintf(bw, "%s_count%s %d\n", f.name, labelText(f.labels, s.values, "", ""), n)
			}
		}
	}
	return bw.Flush()
}

// Handler serves WriteText.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_ = r.WriteText(w)
	})
}

func num(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func labelText(names, values []string, extraName, extraValue string) string {
	if len(names) == 0 && extraName == "" {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escapeValue(values[i]))
		b.WriteByte('"')
	}
	if extraName != "" {
		if len(names) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extraName + `="` + extraValue + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

var valueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeValue(s string) string { return valueEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
