package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"sort"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// A small plotter on image/png: a line chart of ack-echo latency against load and a bar chart of
// fan-out throughput, for Go, Node and the raw baselines.

var (
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	colors = map[string]color.RGBA{
		"go":       {0, 125, 156, 255},
		"node":     {68, 136, 62, 255},
		"raw":      {200, 120, 0, 255},
		"raw-sync": {150, 150, 150, 255},
	}
)

type canvas struct{ img *image.RGBA }

func (c canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c canvas) line(x0, y0, x1, y1 int, col color.RGBA, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	err := dx + dy
	for {
		for i := -width / 2; i <= width/2; i++ {
			for j := -width / 2; j <= width/2; j++ {
				c.set(x0+i, y0+j, col)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func (c canvas) dashed(x0, y0, x1, y1 int, col color.RGBA) {
	n := max(abs(x1-x0), abs(y1-y0))
	for i := 0; i <= n; i++ {
		if (i/6)%2 == 0 {
			x := x0 + (x1-x0)*i/max(n, 1)
			y := y0 + (y1-y0)*i/max(n, 1)
			c.set(x, y, col)
			c.set(x, y+1, col)
		}
	}
}

func (c canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	for y := min(y0, y1); y <= max(y0, y1); y++ {
		for x := min(x0, x1); x <= max(x0, x1); x++ {
			c.set(x, y, col)
		}
	}
}

func (c canvas) text(x, y int, s string, col color.RGBA) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int { return len(s) * 7 }

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

type panel struct {
	c              canvas
	x0, y0, x1, y1 int // plot area
	xmax, ymax     float64
}

func (p panel) px(x float64) int { return p.x0 + int(x/p.xmax*float64(p.x1-p.x0)) }
func (p panel) py(y float64) int { return p.y1 - int(y/p.ymax*float64(p.y1-p.y0)) }

func (p panel) axes(title, xlabel, ylabel string, xticks []float64) {
	for i := 0; i <= 5; i++ {
		v := p.ymax * float64(i) / 5
		y := p.py(v)
		p.c.line(p.x0, y, p.x1, y, grey, 1)
		lbl := trimFloat(v)
		p.c.text(p.x0-8-textWidth(lbl), y+4, lbl, black)
	}
	for _, v := range xticks {
		x := p.px(v)
		p.c.line(x, p.y1, x, p.y1+4, black, 1)
		lbl := trimFloat(v)
		p.c.text(x-textWidth(lbl)/2, p.y1+18, lbl, black)
	}
	p.c.line(p.x0, p.y0, p.x0, p.y1, black, 1)
	p.c.line(p.x0, p.y1, p.x1, p.y1, black, 1)
	p.c.text((p.x0+p.x1)/2-textWidth(title)/2, p.y0-14, title, black)
	p.c.text((p.x0+p.x1)/2-textWidth(xlabel)/2, p.y1+36, xlabel, black)
	p.c.text(p.x0-50, p.y0-14+0, "", black)
	p.c.text(p.x0, p.y0-2, ylabel, black)
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func plot(rs *results, path string) error {
	const W, H = 1100, 480
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	c := canvas{img}
	c.rect(0, 0, W-1, H-1, color.RGBA{255, 255, 255, 255})

	// Left: echo latency vs rate.
	type pt struct{ rate, p50, p99 float64 }
	series := map[string][]pt{}
	var xmax, ymax float64
	seen := map[string]bool{}
	for _, r := range rs.all {
		if r.Scenario != "echo" || (r.Server != "go" && r.Server != "node") || seen[r.Server+r.key()] {
			continue
		}
		seen[r.Server+r.key()] = true
		m, _ := rs.get("echo", 0, r.Rate, r.Server) // the median run when repeated
		series[r.Server] = append(series[r.Server], pt{m.Rate, m.P50ms, m.P99ms})
		xmax, ymax = max(xmax, m.Rate), max(ymax, m.P99ms)
	}
	left := panel{c: c, x0: 70, y0: 50, x1: 520, y1: 410, xmax: niceMax(xmax * 1.05), ymax: niceMax(ymax * 1.1)}
	var xt []float64
	for i := 0; i <= 5; i++ {
		xt = append(xt, left.xmax*float64(i)/5)
	}
	left.axes("Ack echo latency vs load (p99 solid, p50 dashed)", "echo messages per second", "ms", xt)
	for _, srv := range []string{"go", "node"} {
		pts := series[srv]
		sort.Slice(pts, func(i, j int) bool { return pts[i].rate < pts[j].rate })
		col := colors[srv]
		for i, p := range pts {
			x, y99, y50 := left.px(p.rate), left.py(p.p99), left.py(p.p50)
			c.rect(x-3, y99-3, x+3, y99+3, col)
			c.rect(x-2, y50-2, x+2, y50+2, col)
			if i > 0 {
				q := pts[i-1]
				c.line(left.px(q.rate), left.py(q.p99), x, y99, col, 2)
				c.dashed(left.px(q.rate), left.py(q.p50), x, y50, col)
			}
		}
	}
	legend(c, 90, 70, []string{"go", "node"})

	// Right: fan-out delivered/s (thousands) per room size.
	rooms := []int{100, 1000}
	servers := []string{"go", "node", "raw", "raw-sync"}
	var bmax float64
	for _, room := range rooms {
		for _, s := range servers {
			if r, ok := rs.get("fanout", room, 0, s); ok {
				bmax = max(bmax, r.DeliveredPerSec/1000)
			}
		}
	}
	right := panel{c: c, x0: 640, y0: 50, x1: 1070, y1: 410, xmax: 1, ymax: niceMax(bmax * 1.1)}
	right.axes("Room fan-out, one sender (max rate)", "room size", "k msgs delivered/s", nil)
	groupW := (right.x1 - right.x0) / len(rooms)
	barW := groupW / (len(servers) + 2)
	for gi, room := range rooms {
		gx := right.x0 + gi*groupW + barW
		for si, s := range servers {
			r, ok := rs.get("fanout", room, 0, s)
			if !ok {
				continue
			}
			x := gx + si*barW
			v := r.DeliveredPerSec / 1000
			c.rect(x+2, right.py(v), x+barW-2, right.y1-1, colors[s])
			lbl := fmt.Sprintf("%.0f", v)
			c.text(x+barW/2-textWidth(lbl)/2, right.py(v)-4, lbl, black)
		}
		lbl := fmt.Sprint(room)
		c.text(right.x0+gi*groupW+groupW/2-textWidth(lbl)/2, right.y1+18, lbl, black)
	}
	legend(c, right.x1-110, 70, servers)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func legend(c canvas, x, y int, names []string) {
	for i, n := range names {
		yy := y + i*16
		c.rect(x, yy-8, x+12, yy+2, colors[n])
		c.text(x+18, yy+2, n, black)
	}
}
