// Command cri-interop is a Go CRI v1 client that dials a runtime the way the
// kubelet 1.26 does and drives every RPC family against it. Built offline from
// Debian's grpc-go and protobuf packages; messages come from a descriptor set
// (protoc --include_imports --descriptor_set_out) through dynamicpb.
//
//	cri-interop -endpoint unix:///run/berth/berth.sock -descriptors api.pb -image REF -log-dir DIR
//	cri-interop -mode bench -endpoint ... -descriptors api.pb [-n 1000] [-calls JSON] [-warmup 200] [-interleave] [-raw]
//	cri-interop -mode capture -descriptors api.pb -dir DIR
//	cri-interop -mode reconnect -endpoint ... -descriptors api.pb
//
// check mode prints one JSON line per check and exits 1 when any failed; bench
// prints one JSON line of latency percentiles per method; capture prints the
// HTTP/2 request headers this client sends; reconnect calls Version on one
// connection until it has seen the runtime up, down (a restart) and up again.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"google.golang.org/grpc/status"
)

func main() {
	mode := flag.String("mode", "check", "check | bench | capture")
	endpoint := flag.String("endpoint", "", "CRI endpoint, unix:///path/to.sock")
	descriptors := flag.String("descriptors", "", "FileDescriptorSet of api/cri/v1/api.proto")
	authority := flag.String("authority", "", "override the HTTP/2 :authority (development only: the kubelet sends the socket path)")
	image := flag.String("image", "", "check: image reference to pull, run and remove")
	logDir := flag.String("log-dir", "", "check: the pod's log directory")
	n := flag.Int("n", 1000, "bench: calls per method")
	calls := flag.String("calls", `[{"method":"RuntimeService/Version","req":{"version":"v1"}},{"method":"RuntimeService/ListContainers","req":{}}]`, "bench: JSON array of {method, req} to time")
	warmup := flag.Int("warmup", 200, "bench: untimed calls per method first")
	interleave := flag.Bool("interleave", false, "bench: one call of each method in turn, n rounds (else n calls of one method, then the next)")
	raw := flag.Bool("raw", false, "bench: print every latency (samples_us) too")
	dir := flag.String("dir", "", "capture: directory for the listening socket")
	flag.Parse()

	die := func(format string, args ...interface{}) {
		fmt.Fprintf(os.Stderr, "cri-interop: "+format+"\n", args...)
		os.Exit(2)
	}
	if *descriptors == "" {
		die("-descriptors is required")
	}
	services, err := loadServices(*descriptors)
	if err != nil {
		die("%v", err)
	}
	connect := func(ep string) (*criClient, error) {
		conn, err := dialCRI(ep, *authority)
		if err != nil {
			return nil, err
		}
		return &criClient{conn: conn, files: services}, nil
	}

	if *mode == "capture" {
		if *dir == "" {
			die("capture: -dir is required")
		}
		if err := runCapture(connect, *dir); err != nil {
			die("capture: %v", err)
		}
		return
	}
	if *endpoint == "" {
		die("-endpoint is required")
	}
	c, err := connect(*endpoint)
	if err != nil {
		die("dial %s: %v", *endpoint, err)
	}
	defer c.conn.Close()

	switch *mode {
	case "check":
		if *image == "" || *logDir == "" {
			die("check: -image and -log-dir are required")
		}
		failed := runChecks(c, *image, *logDir)
		_ = json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"done": true, "failed": failed})
		if failed > 0 {
			fmt.Fprintf(os.Stderr, "cri-interop: %d check(s) failed\n", failed)
			os.Exit(1)
		}
	case "bench":
		var list []struct {
			Method string          `json:"method"`
			Req    json.RawMessage `json:"req"`
		}
		if err := json.Unmarshal([]byte(*calls), &list); err != nil {
			die("-calls: %v", err)
		}
		methods := make([]benchMethod, len(list))
		for i, m := range list {
			req := string(m.Req)
			if req == "" {
				req = "{}"
			}
			methods[i] = benchMethod{method: m.Method, req: req}
		}
		results, err := bench(c, methods, *n, *warmup, *interleave)
		if err != nil {
			die("bench: %v", err)
		}
		for _, r := range results {
			if !*raw {
				r.SamplesUs = nil
			}
			_ = json.NewEncoder(os.Stdout).Encode(r)
		}
	case "reconnect":
		if err := reconnect(c, 2*time.Minute); err != nil {
			die("reconnect: %v", err)
		}
	default:
		die("unknown -mode %q", *mode)
	}
}

type benchMethod struct{ method, req string }

type benchResult struct {
	Method    string    `json:"method"`
	Calls     int       `json:"calls"`
	P50us     float64   `json:"p50_us"`
	P90us     float64   `json:"p90_us"`
	P99us     float64   `json:"p99_us"`
	MeanUs    float64   `json:"mean_us"`
	SamplesUs []float64 `json:"samples_us,omitempty"`
}

// bench times n sequential calls of each method on the one connection, after
// a warm-up: method by method, or one of each in turn (interleave).
func bench(c *criClient, methods []benchMethod, n, warmup int, interleave bool) ([]benchResult, error) {
	ctx := context.Background()
	for _, m := range methods {
		for i := 0; i < warmup; i++ {
			if _, err := c.call(ctx, m.method, m.req); err != nil {
				return nil, fmt.Errorf("%s: %v", m.method, err)
			}
		}
	}
	lat := make([][]time.Duration, len(methods))
	for k := range lat {
		lat[k] = make([]time.Duration, 0, n)
	}
	one := func(k int) error {
		t0 := time.Now()
		if _, err := c.call(ctx, methods[k].method, methods[k].req); err != nil {
			return fmt.Errorf("%s: %v", methods[k].method, err)
		}
		lat[k] = append(lat[k], time.Since(t0))
		return nil
	}
	if interleave {
		for i := 0; i < n; i++ {
			for k := range methods {
				if err := one(k); err != nil {
					return nil, err
				}
			}
		}
	} else {
		for k := range methods {
			for i := 0; i < n; i++ {
				if err := one(k); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]benchResult, len(methods))
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	for k, m := range methods {
		samples := make([]float64, len(lat[k]))
		var total time.Duration
		for i, d := range lat[k] {
			samples[i] = us(d)
			total += d
		}
		sorted := append([]time.Duration(nil), lat[k]...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
		pct := func(p float64) float64 { return us(sorted[int(p*float64(n-1))]) }
		out[k] = benchResult{Method: m.method, Calls: n, P50us: pct(0.5), P90us: pct(0.9), P99us: pct(0.99), MeanUs: us(total) / float64(n), SamplesUs: samples}
	}
	return out, nil
}

// reconnect polls Version every 100 ms the way the kubelet's status loop uses
// its one ClientConn (no wait-for-ready, a deadline per call) and prints a
// JSON line at each phase: up, down (with the gRPC code seen), up again.
func reconnect(c *criClient, limit time.Duration) error {
	out := json.NewEncoder(os.Stdout)
	phases := []string{"up", "down", "up-again"}
	end := time.Now().Add(limit)
	var downAt time.Time
	for phase := 0; phase < len(phases); {
		if time.Now().After(end) {
			return fmt.Errorf("still waiting for %q after %v", phases[phase], limit)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := c.call(ctx, "RuntimeService/Version", `{"version":"v1"}`)
		cancel()
		up := err == nil && str(v, "runtimeApiVersion") == "v1"
		switch {
		case phases[phase] == "down" && !up:
			downAt = time.Now()
			_ = out.Encode(map[string]interface{}{"phase": "down", "code": status.Code(err).String()})
			phase++
		case phases[phase] != "down" && up:
			line := map[string]interface{}{"phase": phases[phase]}
			if !downAt.IsZero() {
				line["after_ms"] = time.Since(downAt).Milliseconds()
			}
			_ = out.Encode(line)
			phase++
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
