package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
)

// WriteSVG draws one pair of horizontal bars per broker path: the path's
// MB/s and, beside it in grey, the raw baseline it is compared with. A
// dashed line marks goalMBps (0: none). The SVG is hand-written: no
// scripts, no external fonts, readable in a browser or on GitHub.
func (rep *Report) WriteSVG(path string, goalMBps float64) error {
	if err := os.WriteFile(path, rep.SVG(goalMBps), 0o644); err != nil {
		return fmt.Errorf("bench: svg: %w", err)
	}
	return nil
}

// SVG renders the chart WriteSVG writes.
func (rep *Report) SVG(goalMBps float64) []byte {
	by := make(map[string]Result, len(rep.Results))
	var paths []Result
	maxV := goalMBps
	for _, r := range rep.Results {
		by[r.Name] = r
		if r.Kind == KindBroker {
			paths = append(paths, r)
		}
	}
	for _, r := range paths {
		maxV = max(maxV, r.MBps, by[r.Baseline].MBps)
	}
	step := niceStep(maxV / 5)
	if step <= 0 {
		step = 1
	}
	top := math.Ceil(maxV/step) * step

	const (
		width    = 1040.0
		labelW   = 270.0
		barAreaW = 430.0 // the rest of the width holds the value labels
		barH     = 18.0
		groupGap = 16.0
		headH    = 74.0
		footH    = 70.0
	)
	groupH := 2*barH + 4 + groupGap
	height := headH + float64(len(paths))*groupH + footH
	x := func(v float64) float64 { return labelW + barAreaW*v/top }

	// A white outline keeps value labels readable where they cross the goal line.
	const halo = `paint-order="stroke" stroke="#ffffff" stroke-width="3"`
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="12" y="22" font-size="16" font-weight="bold">%s</text>`+"\n",
		esc("sluice bench: broker throughput beside this machine's raw limit, same run"))
	m := rep.Machine
	fmt.Fprintf(&b, `<text x="12" y="42" fill="#555">%s</text>`+"\n",
		esc(fmt.Sprintf("%d CPUs %s, kernel %s, %s; %s produced, %d fetch connection(s); median of %d rounds; load avg %s; %s",
			m.NumCPU, m.CPUModel, m.Kernel, m.GoVersion, FormatBytes(rep.Settings.SizeBytes), rep.Settings.Conns,
			max(rep.Settings.Rounds, 1), rep.LoadAvg[0], rep.Started.UTC().Format("2006-01-02 15:04 MST"))))

	// Grid and axis labels.
	axisY := headH + float64(len(paths))*groupH
	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", x(v), headH-6, x(v), axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%.0f</text>`+"\n", x(v), axisY+16, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">MB/s (1 MB = 10^6 bytes)</text>`+"\n", x(top)+24, axisY+16)

	for i, r := range paths {
		y := headH + float64(i)*groupH
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", labelW-10, y+barH+2, esc(r.Name))
		color := "#2b6cb0" // fetch
		if r.Bytes > 0 && len(r.Name) >= 7 && r.Name[:7] == "produce" {
			color = "#c05621"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", labelW, y, x(r.MBps)-labelW, barH, color)
		txt := fmt.Sprintf("%.0f MB/s", r.MBps)
		if r.PctOfBaseline > 0 {
			txt += fmt.Sprintf(" = %.0f%% of raw", r.PctOfBaseline)
		}
		if r.ServerCPUPerGB > 0 {
			txt += fmt.Sprintf(", broker %.2f CPU-s/GB", r.ServerCPUPerGB)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s>%s</text>`+"\n", x(r.MBps)+6, y+barH-5, halo, esc(txt))
		if base, ok := by[r.Baseline]; ok && r.GoalPctOfBaseline > 0 {
			// A red tick on the path's bar where its goal (a share of the raw limit) lies.
			gx := x(base.MBps * r.GoalPctOfBaseline / 100)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c53030" stroke-width="2"/>`+"\n", gx, y-3, gx, y+barH+3)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c53030" font-size="10" text-anchor="middle" %s>goal %.0f%%</text>`+"\n", gx, y-5, halo, r.GoalPctOfBaseline)
		}
		if base, ok := by[r.Baseline]; ok {
			by2 := y + barH + 4
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#a0aec0"/>`+"\n", labelW, by2, x(base.MBps)-labelW, barH)
			txt := fmt.Sprintf("%.0f MB/s %s", base.MBps, base.Name)
			if base.ServerCPUPerGB > 0 {
				txt += fmt.Sprintf(", peer %.2f CPU-s/GB", base.ServerCPUPerGB)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#444" %s>%s</text>`+"\n", x(base.MBps)+6, by2+barH-5, halo, esc(txt))
		}
	}
	if goalMBps > 0 {
		gx := x(goalMBps)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c53030" stroke-dasharray="5,4"/>`+"\n", gx, headH-8, gx, axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c53030" text-anchor="middle">%s</text>`+"\n", gx, headH-12, esc(fmt.Sprintf("goal %.0f MB/s (plaintext fetch)", goalMBps)))
	}
	for i, line := range []string{
		"blue / orange: through a sluice broker process, client in the benchmark process; % = share of the raw limit drawn below it",
		"grey: the raw limit: a bare Go peer process doing only sendfile, pread+write, crypto/tls or socket-to-file on the same loopback, in alternating rounds",
	} {
		fmt.Fprintf(&b, `<text x="12" y="%.1f" fill="#555" font-size="11">%s</text>`+"\n", height-24+float64(i)*15, esc(line))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
