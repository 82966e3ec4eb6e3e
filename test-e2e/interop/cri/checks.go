package main

// The interop checks: every CRI RPC family against a running daemon, with
// the results a kubelet relies on. Each check prints one JSON line; the run
// fails when any check fails.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type result struct {
	Name   string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

type checker struct {
	c      *criClient
	failed int
	out    *json.Encoder
}

func (k *checker) report(name string, ok bool, format string, args ...interface{}) bool {
	r := result{Name: name, OK: ok}
	if format != "" {
		r.Detail = fmt.Sprintf(format, args...)
	}
	if !ok {
		k.failed++
	}
	_ = k.out.Encode(r)
	return ok
}

// expect records a check that holds when cond does; detail says what was seen.
func (k *checker) expect(name string, cond bool, format string, args ...interface{}) bool {
	return k.report(name, cond, format, args...)
}

// must runs a unary call and records a failed check when it errors.
func (k *checker) must(name, method, req string) (obj, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := k.c.call(ctx, method, req)
	if err != nil {
		k.report(name, false, "%s %s: %v", method, req, err)
		return nil, false
	}
	return resp, true
}

// code expects a call to fail with a gRPC code.
func (k *checker) code(name, method, req string, want codes.Code) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := k.c.call(ctx, method, req)
	got := status.Code(err)
	k.expect(name, got == want, "%s %s: want %s, got %s (%v)", method, req, want, got, err)
}

func jsonOf(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func bytesOf(v interface{}, path string) string {
	b, _ := base64.StdEncoding.DecodeString(str(v, path))
	return string(b)
}

func sameSet(got, want []string) bool {
	g := append([]string{}, got...)
	w := append([]string{}, want...)
	sort.Strings(g)
	sort.Strings(w)
	return strings.Join(g, ",") == strings.Join(w, ",")
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// eventLog gathers GetContainerEvents messages in the background.
type eventLog struct {
	mu     sync.Mutex
	events []obj
	err    error
}

func (e *eventLog) types(containerID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []string{}
	for _, ev := range e.events {
		if str(ev, "containerId") == containerID {
			out = append(out, str(ev, "containerEventType"))
		}
	}
	return out
}

func (e *eventLog) last(containerID, kind string) obj {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out obj
	for _, ev := range e.events {
		if str(ev, "containerId") == containerID && str(ev, "containerEventType") == kind {
			out = ev
		}
	}
	return out
}

func (e *eventLog) waitFor(containerID string, want []string, d time.Duration) []string {
	end := time.Now().Add(d)
	for {
		got := e.types(containerID)
		if strings.HasPrefix(strings.Join(got, ","), strings.Join(want, ",")) || time.Now().After(end) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runChecks(c *criClient, image, logDir string) int {
	k := &checker{c: c, out: json.NewEncoder(os.Stdout)}

	// --- runtime identity and health
	// The kubelet 1.26 asks with its own API version string, "0.1.0".
	if v, ok := k.must("Version", "RuntimeService/Version", `{"version":"0.1.0"}`); ok {
		// The kubelet refuses a runtime whose answer leaves any of these empty.
		k.expect("Version", str(v, "runtimeApiVersion") == "v1" && str(v, "runtimeName") != "" && str(v, "runtimeVersion") != "" && str(v, "version") != "", "%s", jsonOf(v))
	}
	if s, ok := k.must("Status", "RuntimeService/Status", `{"verbose":true}`); ok {
		conds := map[string]bool{}
		for _, cnd := range list(s, "status.conditions") {
			conds[str(cnd, "type")] = get(cnd, "status") == true
		}
		info, _ := get(s, "info").(obj)
		k.expect("Status", conds["RuntimeReady"] && conds["NetworkReady"] && len(info) > 0, "conditions %v, %d info keys", conds, len(info))
	}
	if rc, ok := k.must("RuntimeConfig", "RuntimeService/RuntimeConfig", `{}`); ok {
		d := str(rc, "linux.cgroupDriver")
		k.expect("RuntimeConfig", d == "SYSTEMD" || d == "CGROUPFS", "cgroup driver %q", d)
	}

	// Many calls in flight on the one connection (the kubelet's PLEG, probes
	// and status sync share it): every answer arrives and matches its request.
	{
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if i%2 == 0 {
					v, err := c.call(ctx, "RuntimeService/Version", `{"version":"v1"}`)
					if err != nil || str(v, "runtimeApiVersion") != "v1" {
						errs <- fmt.Sprintf("Version #%d: %v %s", i, err, jsonOf(v))
					}
					return
				}
				want := fmt.Sprintf("nosuch-%d", i)
				_, err := c.call(ctx, "RuntimeService/ContainerStatus", fmt.Sprintf(`{"containerId":%q}`, want))
				if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), want) {
					errs <- fmt.Sprintf("ContainerStatus #%d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		var bad []string
		for e := range errs {
			bad = append(bad, e)
		}
		k.expect("64 concurrent calls on one connection", len(bad) == 0, "%v", bad)
	}

	// The kubelet sends the node's pod CIDR at start-up; nothing to change is accepted.
	if _, ok := k.must("UpdateRuntimeConfig", "RuntimeService/UpdateRuntimeConfig", `{"runtimeConfig":{"networkConfig":{"podCidr":""}}}`); ok {
		k.expect("UpdateRuntimeConfig", true, "")
	}

	// --- images
	imageID := ""
	if p, ok := k.must("PullImage", "ImageService/PullImage", fmt.Sprintf(`{"image":{"image":%q}}`, image)); ok {
		imageID = str(p, "imageRef")
		k.expect("PullImage", strings.HasPrefix(imageID, "sha256:") && len(imageID) == 71, "imageRef %q", imageID)
	}
	if st, ok := k.must("ImageStatus", "ImageService/ImageStatus", fmt.Sprintf(`{"image":{"image":%q},"verbose":true}`, image)); ok {
		tags := ids(list(st, "image.repoTags"), "")
		k.expect("ImageStatus", str(st, "image.id") == imageID && num(st, "image.size") > 0 && len(tags) > 0, "id %q size %d tags %v", str(st, "image.id"), num(st, "image.size"), list(st, "image.repoTags"))
	}
	if st, ok := k.must("ImageStatus of an unknown image", "ImageService/ImageStatus", `{"image":{"image":"nosuch.invalid/none:1"}}`); ok {
		// The CRI answers an absent image with an empty status, not an error.
		k.expect("ImageStatus of an unknown image", get(st, "image") == nil, "%s", jsonOf(st))
	}
	if l, ok := k.must("ListImages", "ImageService/ListImages", `{}`); ok {
		k.expect("ListImages", contains(ids(list(l, "images"), "id"), imageID), "ids %v", ids(list(l, "images"), "id"))
	}
	if l, ok := k.must("ListImages with a filter", "ImageService/ListImages", fmt.Sprintf(`{"filter":{"image":{"image":%q}}}`, image)); ok {
		k.expect("ListImages with a filter", sameSet(ids(list(l, "images"), "id"), []string{imageID}), "ids %v", ids(list(l, "images"), "id"))
	}
	if fs, ok := k.must("ImageFsInfo", "ImageService/ImageFsInfo", `{}`); ok {
		f := list(fs, "imageFilesystems")
		k.expect("ImageFsInfo", len(f) > 0 && num(f[0], "usedBytes.value") > 0 && str(f[0], "fsId.mountpoint") != "" && num(f[0], "timestamp") > 0, "%s", jsonOf(f))
	}

	// --- pod sandbox
	podName := fmt.Sprintf("gocri-%d", os.Getpid())
	podCfg := fmt.Sprintf(`{"metadata":{"name":%q,"uid":"uid-%s","namespace":"interop","attempt":0},"hostname":%q,"logDirectory":%q,"labels":{"app":"gocri"},"annotations":{"interop":"go"}}`,
		podName, podName, podName, logDir)
	pod := ""
	if r, ok := k.must("RunPodSandbox", "RuntimeService/RunPodSandbox", fmt.Sprintf(`{"config":%s}`, podCfg)); ok {
		pod = str(r, "podSandboxId")
		k.expect("RunPodSandbox", len(pod) == 64, "id %q", pod)
	}
	if pod == "" {
		return k.failed
	}
	if st, ok := k.must("PodSandboxStatus", "RuntimeService/PodSandboxStatus", fmt.Sprintf(`{"podSandboxId":%q,"verbose":true}`, pod)); ok {
		k.expect("PodSandboxStatus", str(st, "status.id") == pod && str(st, "status.state") == "SANDBOX_READY" && str(st, "status.metadata.name") == podName &&
			str(st, "status.network.ip") != "" && str(st, "status.labels.app") == "gocri" && num(st, "status.createdAt") > 0,
			"%s", jsonOf(get(st, "status")))
	}
	podLists := []struct {
		name, filter string
		want         []string
	}{
		{"ListPodSandbox by id prefix", fmt.Sprintf(`{"id":%q}`, pod[:13]), []string{pod}},
		{"ListPodSandbox by label", `{"labelSelector":{"app":"gocri"}}`, []string{pod}},
		{"ListPodSandbox by state", `{"state":{"state":"SANDBOX_READY"},"labelSelector":{"app":"gocri"}}`, []string{pod}},
		{"ListPodSandbox by another label", `{"labelSelector":{"app":"none"}}`, []string{}},
		{"ListPodSandbox by NOTREADY state", `{"state":{"state":"SANDBOX_NOTREADY"}}`, []string{}},
	}
	for _, pl := range podLists {
		if l, ok := k.must(pl.name, "RuntimeService/ListPodSandbox", fmt.Sprintf(`{"filter":%s}`, pl.filter)); ok {
			got := ids(list(l, "items"), "id")
			k.expect(pl.name, sameSet(got, pl.want), "got %v want %v", got, pl.want)
		}
	}

	// --- container events: subscribe before creating the container
	evCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	events := &eventLog{}
	if recv, err := c.serverStream(evCtx, "RuntimeService/GetContainerEvents", `{}`); err != nil {
		k.report("GetContainerEvents", false, "%v", err)
	} else {
		go func() {
			for {
				ev, err := recv()
				events.mu.Lock()
				if err != nil {
					events.err = err
					events.mu.Unlock()
					return
				}
				events.events = append(events.events, ev)
				events.mu.Unlock()
			}
		}()
	}
	// GetContainerEvents has no reply header until the first event; give the
	// subscription a moment to be registered on the daemon's side.
	time.Sleep(300 * time.Millisecond)

	// --- container lifecycle
	ctrCfg := fmt.Sprintf(`{"metadata":{"name":"ticker","attempt":0},"image":{"image":%q},"command":["/bin/sh","-c","echo started; while true; do echo tick; sleep 0.2; done"],"logPath":"ticker.log","labels":{"role":"ticker"}}`, image)
	ctr := ""
	if r, ok := k.must("CreateContainer", "RuntimeService/CreateContainer", fmt.Sprintf(`{"podSandboxId":%q,"config":%s,"sandboxConfig":%s}`, pod, ctrCfg, podCfg)); ok {
		ctr = str(r, "containerId")
		k.expect("CreateContainer", len(ctr) == 64, "id %q", ctr)
	}
	if ctr == "" {
		return k.failed
	}
	ctrReq := fmt.Sprintf(`{"containerId":%q}`, ctr)
	if st, ok := k.must("ContainerStatus created", "RuntimeService/ContainerStatus", ctrReq); ok {
		// The kubelet rejects a status without id, metadata, image, imageRef or createdAt.
		k.expect("ContainerStatus created", str(st, "status.state") == "CONTAINER_CREATED" && num(st, "status.startedAt") == 0 && str(st, "status.id") == ctr &&
			num(st, "status.createdAt") > 0 && str(st, "status.imageRef") == imageID && str(st, "status.image.image") == image, "%s", jsonOf(get(st, "status")))
	}
	if _, ok := k.must("StartContainer", "RuntimeService/StartContainer", ctrReq); ok {
		k.expect("StartContainer", true, "")
	}
	logPath := filepath.Join(logDir, "ticker.log")
	if st, ok := k.must("ContainerStatus running", "RuntimeService/ContainerStatus", fmt.Sprintf(`{"containerId":%q,"verbose":true}`, ctr)); ok {
		k.expect("ContainerStatus running", str(st, "status.state") == "CONTAINER_RUNNING" && num(st, "status.startedAt") > 0 && str(st, "status.image.image") == image &&
			str(st, "status.imageRef") == imageID && str(st, "status.logPath") == logPath && str(st, "status.metadata.name") == "ticker" && str(st, "info.info") != "",
			"%s", jsonOf(get(st, "status")))
	}
	got := events.waitFor(ctr, []string{"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT"}, 10*time.Second)
	k.expect("GetContainerEvents created, started", len(got) >= 2 && got[0] == "CONTAINER_CREATED_EVENT" && got[1] == "CONTAINER_STARTED_EVENT", "events of the container: %v (stream error %v)", got, events.err)
	// The evented PLEG takes the statuses from the event itself.
	if ev := events.last(ctr, "CONTAINER_STARTED_EVENT"); ev != nil {
		var states []string
		for _, cs := range list(ev, "containersStatuses") {
			if str(cs, "id") == ctr {
				states = append(states, str(cs, "state"))
			}
		}
		k.expect("GetContainerEvents carries the statuses", str(ev, "podSandboxStatus.id") == pod && str(ev, "podSandboxStatus.state") == "SANDBOX_READY" &&
			num(ev, "createdAt") > 0 && len(states) == 1 && states[0] == "CONTAINER_RUNNING", "%s", trim(jsonOf(ev)))
	} else {
		k.report("GetContainerEvents carries the statuses", false, "no started event")
	}

	ctrLists := []struct {
		name, filter string
		want         []string
	}{
		{"ListContainers by pod", fmt.Sprintf(`{"podSandboxId":%q}`, pod), []string{ctr}},
		{"ListContainers by id prefix", fmt.Sprintf(`{"id":%q}`, ctr[:12]), []string{ctr}},
		{"ListContainers by label", `{"labelSelector":{"role":"ticker"}}`, []string{ctr}},
		{"ListContainers by state", fmt.Sprintf(`{"podSandboxId":%q,"state":{"state":"CONTAINER_RUNNING"}}`, pod), []string{ctr}},
		{"ListContainers by another state", fmt.Sprintf(`{"podSandboxId":%q,"state":{"state":"CONTAINER_EXITED"}}`, pod), []string{}},
	}
	for _, cl := range ctrLists {
		if l, ok := k.must(cl.name, "RuntimeService/ListContainers", fmt.Sprintf(`{"filter":%s}`, cl.filter)); ok {
			got := ids(list(l, "containers"), "id")
			k.expect(cl.name, sameSet(got, cl.want), "got %v want %v", got, cl.want)
		}
	}
	streamCheck := func(name, method, req, key string, want []string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		recv, err := c.serverStream(ctx, method, req)
		if err != nil {
			k.report(name, false, "%v", err)
			return
		}
		msgs, err := collect(recv)
		got := []string{}
		for _, m := range msgs {
			got = append(got, ids(list(m, key), "id")...)
		}
		k.expect(name, err == nil && sameSet(got, want), "got %v want %v (%d messages, err %v)", got, want, len(msgs), err)
	}
	streamCheck("StreamContainers by pod", "RuntimeService/StreamContainers", fmt.Sprintf(`{"filter":{"podSandboxId":%q}}`, pod), "containers", []string{ctr})
	streamCheck("StreamPodSandboxes by label", "RuntimeService/StreamPodSandboxes", `{"filter":{"labelSelector":{"app":"gocri"}}}`, "podSandboxes", []string{pod})
	streamCheck("StreamImages", "ImageService/StreamImages", fmt.Sprintf(`{"filter":{"image":{"image":%q}}}`, image), "images", []string{imageID})

	// --- resources and logs
	upd := fmt.Sprintf(`{"containerId":%q,"linux":{"cpuShares":"512","memoryLimitInBytes":"67108864"}}`, ctr)
	if _, ok := k.must("UpdateContainerResources", "RuntimeService/UpdateContainerResources", upd); ok {
		st, _ := k.must("UpdateContainerResources", "RuntimeService/ContainerStatus", ctrReq)
		ex, _ := k.must("UpdateContainerResources", "RuntimeService/ExecSync", fmt.Sprintf(`{"containerId":%q,"cmd":["cat","/sys/fs/cgroup/memory/memory.limit_in_bytes"],"timeout":"10"}`, ctr))
		k.expect("UpdateContainerResources", num(st, "status.resources.linux.memoryLimitInBytes") == 67108864 && strings.TrimSpace(bytesOf(ex, "stdout")) == "67108864",
			"status resources %s, cgroup limit %q", jsonOf(get(st, "status.resources")), bytesOf(ex, "stdout"))
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		k.report("ReopenContainerLog", false, "rename %s: %v", logPath, err)
	} else if _, ok := k.must("ReopenContainerLog", "RuntimeService/ReopenContainerLog", ctrReq); ok {
		var data []byte
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			data, _ = os.ReadFile(logPath)
			if strings.Contains(string(data), " stdout F tick") {
				break
			}
		}
		old, _ := os.ReadFile(logPath + ".1")
		k.expect("ReopenContainerLog", strings.Contains(string(data), " stdout F tick") && strings.Contains(string(old), " stdout F started"),
			"new file %q, rotated file starts %q", trim(string(data)), trim(string(old)))
	}

	// --- exec
	if ex, ok := k.must("ExecSync", "RuntimeService/ExecSync", fmt.Sprintf(`{"containerId":%q,"cmd":["/bin/sh","-c","echo out; echo err >&2; hostname; exit 3"],"timeout":"10"}`, ctr)); ok {
		k.expect("ExecSync", bytesOf(ex, "stdout") == "out\n"+podName+"\n" && bytesOf(ex, "stderr") == "err\n" && num(ex, "exitCode") == 3,
			"stdout %q stderr %q exit %d", bytesOf(ex, "stdout"), bytesOf(ex, "stderr"), num(ex, "exitCode"))
	}
	// 6 MB of output: above grpc-go's default 4 MiB receive limit, within the kubelet's 16 MiB.
	if ex, ok := k.must("ExecSync with 6 MB of output", "RuntimeService/ExecSync", fmt.Sprintf(`{"containerId":%q,"cmd":["head","-c","6000000","/dev/zero"],"timeout":"30"}`, ctr)); ok {
		n := len(bytesOf(ex, "stdout"))
		k.expect("ExecSync with 6 MB of output", n == 6000000 && num(ex, "exitCode") == 0, "%d bytes, exit %d", n, num(ex, "exitCode"))
	}
	// More output than one message holds: the daemon trims it to fit the
	// kubelet's 16 MiB receive limit, keeping the short stream whole.
	if ex, ok := k.must("ExecSync with 17 MB of output fits 16 MiB", "RuntimeService/ExecSync", fmt.Sprintf(`{"containerId":%q,"cmd":["/bin/sh","-c","head -c 17000000 /dev/zero; echo short-stderr >&2; exit 2"],"timeout":"30"}`, ctr)); ok {
		n := len(bytesOf(ex, "stdout"))
		k.expect("ExecSync with 17 MB of output fits 16 MiB", n > maxMsgSize-1024 && n < maxMsgSize && bytesOf(ex, "stderr") == "short-stderr\n" && num(ex, "exitCode") == 2,
			"stdout %d bytes, stderr %q, exit %d", n, trim(bytesOf(ex, "stderr")), num(ex, "exitCode"))
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t0 := time.Now()
		_, err := c.call(ctx, "RuntimeService/ExecSync", fmt.Sprintf(`{"containerId":%q,"cmd":["sleep","30"],"timeout":"1"}`, ctr))
		cancel()
		took := time.Since(t0)
		// The kubelet reads DeadlineExceeded as a probe timeout.
		k.expect("ExecSync timeout", status.Code(err) == codes.DeadlineExceeded && took < 15*time.Second, "after %v: %v", took.Round(time.Millisecond), err)
	}
	for _, s := range []struct{ name, method, req string }{
		{"Exec", "RuntimeService/Exec", fmt.Sprintf(`{"containerId":%q,"cmd":["sh"],"stdin":true,"stdout":true}`, ctr)},
		{"Attach", "RuntimeService/Attach", fmt.Sprintf(`{"containerId":%q,"stdout":true,"stderr":true}`, ctr)},
		{"PortForward", "RuntimeService/PortForward", fmt.Sprintf(`{"podSandboxId":%q,"port":[80]}`, pod)},
	} {
		if r, ok := k.must(s.name, s.method, s.req); ok {
			u := str(r, "url")
			k.expect(s.name, strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"), "url %q", u)
		}
	}

	// --- stats
	if st, ok := k.must("ContainerStats", "RuntimeService/ContainerStats", ctrReq); ok {
		k.expect("ContainerStats", str(st, "stats.attributes.id") == ctr && num(st, "stats.cpu.timestamp") > 0 && num(st, "stats.memory.workingSetBytes.value") > 0,
			"%s", jsonOf(get(st, "stats")))
	}
	if l, ok := k.must("ListContainerStats", "RuntimeService/ListContainerStats", fmt.Sprintf(`{"filter":{"podSandboxId":%q}}`, pod)); ok {
		got := ids(list(l, "stats"), "attributes.id")
		k.expect("ListContainerStats", sameSet(got, []string{ctr}), "got %v", got)
	}
	if st, ok := k.must("PodSandboxStats", "RuntimeService/PodSandboxStats", fmt.Sprintf(`{"podSandboxId":%q}`, pod)); ok {
		ctrs := ids(list(st, "stats.linux.containers"), "attributes.id")
		k.expect("PodSandboxStats", str(st, "stats.attributes.id") == pod && num(st, "stats.linux.cpu.timestamp") > 0 && sameSet(ctrs, []string{ctr}),
			"%s", jsonOf(get(st, "stats")))
	}
	if l, ok := k.must("ListPodSandboxStats", "RuntimeService/ListPodSandboxStats", `{"filter":{"labelSelector":{"app":"gocri"}}}`); ok {
		got := ids(list(l, "stats"), "attributes.id")
		k.expect("ListPodSandboxStats", sameSet(got, []string{pod}), "got %v", got)
	}

	// --- error codes the kubelet acts on
	unknown := strings.Repeat("f", 64)
	k.code("ContainerStatus of an unknown id is NotFound", "RuntimeService/ContainerStatus", fmt.Sprintf(`{"containerId":%q}`, unknown), codes.NotFound)
	k.code("PodSandboxStatus of an unknown id is NotFound", "RuntimeService/PodSandboxStatus", fmt.Sprintf(`{"podSandboxId":%q}`, unknown), codes.NotFound)
	k.code("StartContainer of an unknown id is NotFound", "RuntimeService/StartContainer", fmt.Sprintf(`{"containerId":%q}`, unknown), codes.NotFound)
	k.code("ExecSync in an unknown container is NotFound", "RuntimeService/ExecSync", fmt.Sprintf(`{"containerId":%q,"cmd":["true"]}`, unknown), codes.NotFound)
	k.code("ContainerStats of an unknown id is NotFound", "RuntimeService/ContainerStats", fmt.Sprintf(`{"containerId":%q}`, unknown), codes.NotFound)
	k.code("ExecSync without cmd is InvalidArgument", "RuntimeService/ExecSync", ctrReq, codes.InvalidArgument)
	k.code("ContainerStatus without id is InvalidArgument", "RuntimeService/ContainerStatus", `{}`, codes.InvalidArgument)
	k.code("RunPodSandbox without metadata is InvalidArgument", "RuntimeService/RunPodSandbox", `{"config":{"hostname":"x"}}`, codes.InvalidArgument)
	k.code("CreateContainer without config is InvalidArgument", "RuntimeService/CreateContainer", fmt.Sprintf(`{"podSandboxId":%q}`, pod), codes.InvalidArgument)
	k.code("PullImage without image is InvalidArgument", "ImageService/PullImage", `{"image":{"image":""}}`, codes.InvalidArgument)
	// Stop and Remove are idempotent: an id that is already gone is no error.
	for _, m := range []string{"StopContainer", "RemoveContainer"} {
		if _, ok := k.must(m+" of an unknown id succeeds", "RuntimeService/"+m, fmt.Sprintf(`{"containerId":%q}`, unknown)); ok {
			k.expect(m+" of an unknown id succeeds", true, "")
		}
	}
	for _, m := range []string{"StopPodSandbox", "RemovePodSandbox"} {
		if _, ok := k.must(m+" of an unknown id succeeds", "RuntimeService/"+m, fmt.Sprintf(`{"podSandboxId":%q}`, unknown)); ok {
			k.expect(m+" of an unknown id succeeds", true, "")
		}
	}

	// --- teardown, checked step by step
	if _, ok := k.must("StopContainer", "RuntimeService/StopContainer", fmt.Sprintf(`{"containerId":%q,"timeout":"2"}`, ctr)); ok {
		st, _ := k.must("StopContainer", "RuntimeService/ContainerStatus", ctrReq)
		k.expect("StopContainer", str(st, "status.state") == "CONTAINER_EXITED" && num(st, "status.finishedAt") > 0 && num(st, "status.exitCode") != 0,
			"%s", jsonOf(get(st, "status")))
	}
	got = events.waitFor(ctr, []string{"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT"}, 10*time.Second)
	k.expect("GetContainerEvents stopped", len(got) >= 3 && got[2] == "CONTAINER_STOPPED_EVENT", "events of the container: %v", got)
	if _, ok := k.must("RemoveContainer", "RuntimeService/RemoveContainer", ctrReq); ok {
		k.code("RemoveContainer", "RuntimeService/ContainerStatus", ctrReq, codes.NotFound)
	}
	if _, ok := k.must("StopPodSandbox", "RuntimeService/StopPodSandbox", fmt.Sprintf(`{"podSandboxId":%q}`, pod)); ok {
		st, _ := k.must("StopPodSandbox", "RuntimeService/PodSandboxStatus", fmt.Sprintf(`{"podSandboxId":%q}`, pod))
		k.expect("StopPodSandbox", str(st, "status.state") == "SANDBOX_NOTREADY", "%s", jsonOf(get(st, "status")))
	}
	if _, ok := k.must("RemovePodSandbox", "RuntimeService/RemovePodSandbox", fmt.Sprintf(`{"podSandboxId":%q}`, pod)); ok {
		k.code("RemovePodSandbox", "RuntimeService/PodSandboxStatus", fmt.Sprintf(`{"podSandboxId":%q}`, pod), codes.NotFound)
	}
	if _, ok := k.must("RemoveImage", "ImageService/RemoveImage", fmt.Sprintf(`{"image":{"image":%q}}`, image)); ok {
		st, _ := k.must("RemoveImage", "ImageService/ImageStatus", fmt.Sprintf(`{"image":{"image":%q}}`, image))
		l, _ := k.must("RemoveImage", "ImageService/ListImages", `{}`)
		k.expect("RemoveImage", st != nil && get(st, "image") == nil && !contains(ids(list(l, "images"), "id"), imageID), "status %s", jsonOf(st))
	}
	stopEvents()
	return k.failed
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
