package bench

import "testing"

func TestMetricValue(t *testing.T) {
	body := []byte(`# HELP sluice_fetch_bytes_total Record bytes sent by Fetch, by write path (sendfile, copy, tls).
# TYPE sluice_fetch_bytes_total counter
sluice_fetch_bytes_total{path="sendfile"} 1.073741824e+09
sluice_fetch_bytes_total{path="tls"} 12345
sluice_fetch_bytes_total{path="tlsx"} 7
`)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`sluice_fetch_bytes_total{path="sendfile"}`, 1 << 30},
		{`sluice_fetch_bytes_total{path="tls"}`, 12345},
		{`sluice_fetch_bytes_total{path="copy"}`, 0},
	} {
		got, err := metricValue(body, tc.series)
		if err != nil || got != tc.want {
			t.Errorf("metricValue(%s) = %v, %v; want %v", tc.series, got, err, tc.want)
		}
	}
	if _, err := metricValue([]byte("x{a=\"b\"} nope\n"), `x{a="b"}`); err == nil {
		t.Error("unparsable value accepted")
	}
}
