// Command cri-interop is a Go CRI v1 client that dials a runtime the way the
// kubelet 1.26 does and drives every RPC family against it. Built offline from
// Debian's grpc-go and protobuf packages; messages come from a descriptor set
// (protoc --include_imports --descriptor_set_out) through dynamicpb.
//
//	cri-interop -endpoint unix:///run/berth/berth.sock -descriptors api.pb -image REF -log-dir DIR
//	cri-interop -mode bench -endpoint ... -descriptors api.pb [-n 1000]
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
		for _, m := range []struct{ method, req string }{
			{"RuntimeService/Version", `{"version":"v1"}`},
			{"RuntimeService/ListContainers", `{}`},
		} {
			r, err := bench(c, m.method, m.req, *n)
			if err != nil {
				die("bench %s: %v", m.method, err)
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

type benchResult struct {
	Method string  `json:"method"`
	Calls  int     `json:"calls"`
	P50us  float64 `json:"p50_us"`
	P90us  float64 `json:"p90_us"`
	P99us  float64 `json:"p99_us"`
	MeanUs float64 `json:"mean_us"`
}

// bench times n sequential calls on the one connection, after a warm-up.
func bench(c *criClient, method, req string, n int) (benchResult, error) {
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if _, err := c.call(ctx, method, req); err != nil {
			return benchResult{}, err
		}
	}
	lat := make([]time.Duration, n)
	var total time.Duration
	for i := range lat {
		t0 := time.Now()
		if _, err := c.call(ctx, method, req); err != nil {
			return benchResult{}, err
		}
		lat[i] = time.Since(t0)
		total += lat[i]
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
	pct := func(p float64) float64 { return us(lat[int(p*float64(n-1))]) }
	return benchResult{Method: method, Calls: n, P50us: pct(0.5), P90us: pct(0.9), P99us: pct(0.99), MeanUs: us(total) / float64(n)}, nil
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
