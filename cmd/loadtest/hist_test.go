package main

import (
	"math"
	"testing"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 10000; i++ { // 1µs .. 10ms uniformly
		h.record(int64(i) * 1000)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 9.9}, {0.999, 9.99}} {
		got := h.quantile(c.q)
		if math.Abs(got-c.want)/c.want > 0.04 {
			t.Errorf("q%.3f = %.3fms, want %.3fms ±4%%", c.q, got, c.want)
		}
	}
	var empty hist
	if empty.quantile(0.99) != 0 {
		t.Error("empty histogram must report 0")
	}
}

func TestBucketsMonotonic(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us += 7 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucket of %d = %d < %d", us, b, prev)
		}
		prev = b
		if mid := bucketMid(b); us >= 16 && math.Abs(mid-float64(us))/float64(us) > 0.07 {
			t.Fatalf("bucket mid %.0f too far from %d", mid, us)
		}
	}
}

func TestStampOf(t *testing.T) {
	if got := stampOf([]byte(`2["msg",{"t":12345,"p":"xx"}]`)); got != 12345 {
		t.Fatalf("stampOf = %d", got)
	}
	if got := stampOf([]byte(`2["msg",{}]`)); got != -1 {
		t.Fatalf("stampOf without t = %d", got)
	}
}
