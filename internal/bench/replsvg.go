package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
)

// Goals drawn in the replication SVG.
const (
	goalP99Millis      = 5
	goalFailoverMillis = 2000
)

// WriteSVG writes SVG to path.
func (rep *ReplReport) WriteSVG(path string) error {
	if err := os.WriteFile(path, rep.SVG(), 0o644); err != nil {
		return fmt.Errorf("bench: svg: %w", err)
	}
	return nil
}

// SVG draws two panels: the acks=all latency curve (p50 and p99 against the
// offered throughput, log scale, with the 5 ms goal; a point past
// saturation achieves less than it offers, see the table) and the failover
// samples (SIGKILL to the first acknowledged write, with the moment the
// accepted write was sent, and the 2 s goal). Hand-written, no scripts or
// external fonts.
func (rep *ReplReport) SVG() []byte {
	const (
		width, height = 1040.0, 440.0
		top, bottom   = 70.0, 360.0
		lx0, lx1      = 70.0, 490.0 // latency panel
		fx0, fx1      = 640.0, 1010.0
	)
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	text := func(x, y float64, anchor, fill, s string) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s">%s</text>`+"\n", x, y, anchor, fill, esc(s))
	}
	line := func(x1, y1, x2, y2 float64, stroke, extra string) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" %s/>`+"\n", x1, y1, x2, y2, stroke, extra)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="12" y="22" font-size="16" font-weight="bold">%s</text>`+"\n",
		esc("sluice bench replication: acks=all latency (RF=3) and kill -9 failover, one run"))
	m := rep.Machine
	text(12, 42, "start", "#555", fmt.Sprintf("%d CPUs %s, kernel %s, %s; 3 broker processes and the client on one machine; load avg %s; %s",
		m.NumCPU, m.CPUModel, m.Kernel, m.GoVersion, rep.LoadAvg[0], rep.Started.UTC().Format("2006-01-02 15:04 MST")))

	// Latency panel.
	maxX := 0.0
	lo, hi := math.Inf(1), float64(goalP99Millis)
	for _, p := range rep.Latency {
		maxX = max(maxX, p.AchievedMBps, p.TargetMBps)
		lo, hi = min(lo, p.P50Millis), max(hi, p.P99Millis)
	}
	if base, ok := rep.acksAllRaw(); ok {
		maxX = max(maxX, base)
	}
	if len(rep.Latency) > 0 && maxX > 0 {
		step := niceStep(maxX / 5)
		xTop := math.Ceil(maxX/step) * step
		ylo := math.Pow(10, math.Floor(math.Log10(max(lo, 0.01))))
		yhi := math.Pow(10, math.Ceil(math.Log10(hi)))
		x := func(v float64) float64 { return lx0 + (lx1-lx0)*v/xTop }
		y := func(ms float64) float64 {
			return bottom - (bottom-top)*(math.Log10(max(ms, ylo))-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo))
		}
		text((lx0+lx1)/2, top-12, "middle", "#000", "acks=all latency vs throughput (log scale)")
		for v := 0.0; v <= xTop+step/2; v += step {
			line(x(v), top, x(v), bottom, "#e4e4e4", "")
			text(x(v), bottom+16, "middle", "#555", fmt.Sprintf("%.0f", v))
		}
		text((lx0+lx1)/2, bottom+34, "middle", "#555", "offered MB/s (1 MB = 10^6 bytes)")
		for d := ylo; d <= yhi*1.001; d *= 10 {
			for _, k := range []float64{1, 2, 5} {
				v := d * k
				if v > yhi*1.001 {
					break
				}
				line(lx0, y(v), lx1, y(v), "#e4e4e4", "")
				text(lx0-6, y(v)+4, "end", "#555", trimFloat(v))
			}
		}
		text(lx0-44, (top+bottom)/2, "middle", "#555", "ms")
		line(lx0, y(goalP99Millis), lx1, y(goalP99Millis), "#c53030", `stroke-dasharray="5,4"`)
		text(lx1-4, y(goalP99Millis)+14, "end", "#c53030", "goal: p99 ≤ 5 ms at half the max")
		if base, ok := rep.acksAllRaw(); ok {
			line(x(base), top, x(base), bottom, "#718096", `stroke-dasharray="2,3"`)
			text(x(base)-4, top+12, "end", "#718096", fmt.Sprintf("max %.0f MB/s", base))
		}
		for _, series := range []struct {
			name  string
			color string
			f     func(LatencyPoint) float64
		}{{"p50", "#2b6cb0", func(p LatencyPoint) float64 { return p.P50Millis }}, {"p99", "#c05621", func(p LatencyPoint) float64 { return p.P99Millis }}} {
			var pts bytes.Buffer
			for _, p := range rep.Latency {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.TargetMBps), y(series.f(p)))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", pts.String(), series.color)
			for _, p := range rep.Latency {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x(p.TargetMBps), y(series.f(p)), series.color)
				dy := -6.0
				if series.name == "p50" {
					dy = 14
				}
				text(x(p.TargetMBps)+6, y(series.f(p))+dy, "start", series.color, fmt.Sprintf("%s %.2f", series.name, series.f(p)))
			}
		}
	}

	// Failover panel.
	if f := rep.Failover; len(f.Samples) > 0 {
		maxMs := float64(goalFailoverMillis)
		for _, s := range f.Samples {
			maxMs = max(maxMs, s.FirstAckMillis)
		}
		step := niceStep(maxMs / 5)
		xTop := math.Ceil(maxMs/step) * step
		x := func(v float64) float64 { return fx0 + (fx1-fx0)*v/xTop }
		text((fx0+fx1)/2, top-12, "middle", "#000", "SIGKILL of a partition leader to the first acks=all ack")
		rowH := (bottom - top) / float64(len(f.Samples))
		for v := 0.0; v <= xTop+step/2; v += step {
			line(x(v), top, x(v), bottom, "#e4e4e4", "")
			text(x(v), bottom+16, "middle", "#555", fmt.Sprintf("%.1f", v/1000))
		}
		text((fx0+fx1)/2, bottom+34, "middle", "#555", "seconds after kill -9")
		for i, s := range f.Samples {
			y0 := top + float64(i)*rowH + rowH*0.2
			h := rowH * 0.6
			text(fx0-8, y0+h/2+4, "end", "#000", fmt.Sprintf("#%d: %d killed, %d leads", i+1, s.Victim, s.Successor))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#cbd5e0"/>`+"\n", fx0, y0, x(s.AcceptedSendMillis)-fx0, h)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2b6cb0"/>`+"\n", x(s.AcceptedSendMillis), y0, max(x(s.FirstAckMillis)-x(s.AcceptedSendMillis), 1), h)
			text(x(s.FirstAckMillis)+4, y0+h/2+4, "start", "#000", fmt.Sprintf("%.0f ms", s.FirstAckMillis))
		}
		line(x(goalFailoverMillis), top, x(goalFailoverMillis), bottom, "#c53030", `stroke-dasharray="5,4"`)
		text(x(goalFailoverMillis)+4, bottom-6, "start", "#c53030", "goal 2 s")
	}
	for i, l := range []string{
		"left: a rate-limited producer offers pre-built 1 KiB-record batches with acks=all to an RF=3 topic; latency runs from when a request was due to its acknowledgement",
		"right: grey = until the write that succeeded was sent (the successor refused writes before); blue = that write waiting for its acknowledgement (the new ISR fetching it)",
	} {
		text(12, height-30+float64(i)*15, "start", "#555", l)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// trimFloat renders an axis value without trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}
