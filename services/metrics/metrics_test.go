package metrics

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestTextFormat(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("x_total", "Things.\nSecond line", "name")
	g := r.Gauge("g", "A gauge.")
	h := r.Histogram("lat_seconds", "Latency.", []float64{0.1, 1}, "op")
	c.With(`a"b\c`).Inc()
	c.With("plain").Add(2.5)
	c.With("plain").Add(-3) // ignored
	g.With().Set(3)
	g.With().Dec()
	h.With("get").Observe(0.05)
	h.With("get").Observe(0.5)
	h.With("get").Observe(7)
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP x_total Things.\nSecond line
# TYPE x_total counter
x_total{name="a\"b\\c"} 1
x_total{name="plain"} 2.5
# HELP g A gauge.
# TYPE g gauge
g 2
# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{op="get",le="0.1"} 1
lat_seconds_bucket{op="get",le="1"} 2
lat_seconds_bucket{op="get",le="+Inf"} 3
lat_seconds_sum{op="get"} 7.55
lat_seconds_count{op="get"} 3
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSeriesBound(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("ev_total", "Events.", "event")
	for i := 0; i < MaxSeries+50; i++ {
		c.With(fmt.Sprintf("e%d", i)).Inc()
	}
	if got := len(c.f.series); got != MaxSeries+1 {
		t.Fatalf("%d series, want %d (MaxSeries + overflow)", got, MaxSeries+1)
	}
	if v := c.With(OverflowLabel).Value(); v != 50 {
		t.Fatalf("overflow counted %v, want 50", v)
	}
}

func TestConcurrentCounting(t *testing.T) {
	a := NewApp()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				a.EventsIn.With("chat:message").Inc()
				a.HandlerSeconds.With("chat:message").Observe(0.001)
			}
		}()
	}
	wg.Wait()
	if v := a.EventsIn.With("chat:message").Value(); v != 8000 {
		t.Fatalf("counter %v", v)
	}
	if n := a.HandlerSeconds.With("chat:message").Count(); n != 8000 {
		t.Fatalf("histogram count %d", n)
	}
}

func TestDuplicateNamePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration must panic")
		}
	}()
	r := NewRegistry()
	r.Counter("a_total", "")
	r.Gauge("a_total", "")
}
