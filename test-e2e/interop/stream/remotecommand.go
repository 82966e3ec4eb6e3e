// The remote-command half (exec and attach): what client-go's SPDY executor
// (k8s.io/client-go/tools/remotecommand) does once the session is up.
//
// Offered protocols, newest first: v5.channel.k8s.io (over SPDY it behaves
// exactly like v4), v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io,
// channel.k8s.io. The server's echo picks the handler; no echo means v1.
//
// Streams, each created and acknowledged before the next (header "streamType",
// which Go canonicalises to "Streamtype" and spdystream lowercases on the wire):
// error, then stdin (if input is given), stdout, stderr (not with a tty), and
// from v3 on a resize stream when a tty is requested.
//
// v2 and later: stdin is copied and the stream half-closed (FIN) when input
// ends; a second reader drains stdin until the server closes its side, and
// whichever finishes first closes our side (once). stdout and stderr are copied
// to their end (then drained); only after both have ended is the error stream's
// verdict taken: v2/v3 treat any text as an error, v4/v5 decode a metav1.Status
// (Success; Failure with reason NonZeroExitCode and an ExitCode cause parsed as
// an 8-bit number → exit code; any other Failure → its message).
// v3+: terminal sizes go out on the resize stream as JSON {"Width":W,"Height":H},
// one per line (encoding/json's Encoder), the first one at once.
// v1: stdin is copied but never half-closed, a non-empty error stream is an
// error as soon as it arrives, and on return every stream is reset.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

const (
	protoV5 = "v5.channel.k8s.io"
	protoV4 = "v4.channel.k8s.io"
	protoV3 = "v3.channel.k8s.io"
	protoV2 = "v2.channel.k8s.io"
	protoV1 = "channel.k8s.io"
)

var defaultRemoteCommandProtocols = []string{protoV5, protoV4, protoV3, protoV2, protoV1}

// terminalSize has the field names client-go encodes (no JSON tags: "Width", "Height").
type terminalSize struct {
	Width  uint16
	Height uint16
}

type streamOptions struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	tty    bool
	// sizes: the first is sent at once, each next one after output has been seen.
	sizes      []terminalSize
	outputSeen chan struct{}
}

// exitError is client-go's CodeExitError: a remote non-zero exit status.
type exitError struct {
	code int
}

func (e exitError) Error() string { return fmt.Sprintf("command terminated with exit code %d", e.code) }

// status is the part of metav1.Status the v4 decoder looks at.
type status struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details *struct {
		Causes []struct {
			Type    string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func decodeV4(message []byte) error {
	var st status
	if err := json.Unmarshal(message, &st); err != nil {
		return fmt.Errorf("error stream protocol error: %v in %q", err, string(message))
	}
	switch st.Status {
	case "Success":
		return nil
	case "Failure":
		if st.Reason == "NonZeroExitCode" {
			if st.Details == nil {
				return errors.New("error stream protocol error: details must be set")
			}
			for _, c := range st.Details.Causes {
				if c.Type != "ExitCode" {
					continue
				}
				rc, err := strconv.ParseUint(c.Message, 10, 8)
				if err != nil {
					return fmt.Errorf("error stream protocol error: invalid exit code value %q", c.Message)
				}
				return exitError{code: int(rc)}
			}
			return errors.New("error stream protocol error: no ExitCode cause given")
		}
	default:
		return errors.New("error stream protocol error: unknown error")
	}
	return errors.New(st.Message)
}

func decodeText(message []byte) error {
	return fmt.Errorf("error executing remote command: %s", message)
}

// watchErrorStream reads the error stream to its end and hands over the decoded verdict.
func watchErrorStream(r io.Reader, decode func([]byte) error) <-chan error {
	ch := make(chan error, 1)
	go func() {
		message, err := io.ReadAll(r)
		switch {
		case err != nil && err != io.EOF:
			ch <- fmt.Errorf("error reading from error stream: %s", err)
		case len(message) > 0:
			ch <- decode(message)
		default:
			ch <- nil
		}
		close(ch)
	}()
	return ch
}

// outputNotifier closes a channel on the first byte written through it.
type outputNotifier struct {
	w    io.Writer
	once sync.Once
	seen chan struct{}
}

func (o *outputNotifier) Write(p []byte) (int, error) {
	if len(p) > 0 {
		o.once.Do(func() { close(o.seen) })
	}
	return o.w.Write(p)
}

type streams struct {
	errorStream, stdin, stdout, stderr, resize *spdystream.Stream
}

func typed(t string) http.Header {
	h := http.Header{}
	h.Set("streamType", t)
	return h
}

func createRemoteCommandStreams(s *session, o *streamOptions, withResize bool) (*streams, error) {
	var st streams
	var err error
	if st.errorStream, err = s.createStream(typed("error")); err != nil {
		return nil, err
	}
	if o.stdin != nil {
		if st.stdin, err = s.createStream(typed("stdin")); err != nil {
			return nil, err
		}
	}
	if o.stdout != nil {
		if st.stdout, err = s.createStream(typed("stdout")); err != nil {
			return nil, err
		}
	}
	if o.stderr != nil && !o.tty {
		if st.stderr, err = s.createStream(typed("stderr")); err != nil {
			return nil, err
		}
	}
	if withResize && o.tty {
		if st.resize, err = s.createStream(typed("resize")); err != nil {
			return nil, err
		}
	}
	return &st, nil
}

func sendSizes(st *spdystream.Stream, o *streamOptions) {
	if st == nil || len(o.sizes) == 0 {
		return
	}
	go func() {
		enc := json.NewEncoder(st)
		for i, size := range o.sizes {
			if i > 0 && o.outputSeen != nil {
				<-o.outputSeen
				time.Sleep(100 * time.Millisecond)
			}
			if err := enc.Encode(&size); err != nil {
				fmt.Fprintf(os.Stderr, "resize: %v\n", err)
				return
			}
		}
	}()
}

// streamV2Plus is the v2..v5 exchange; decode is the protocol's error-stream reader.
func streamV2Plus(s *session, o *streamOptions, withResize bool, decode func([]byte) error) error {
	st, err := createRemoteCommandStreams(s, o, withResize)
	if err != nil {
		return err
	}
	verdict := watchErrorStream(st.errorStream, decode)
	sendSizes(st.resize, o)
	if st.stdin != nil {
		var once sync.Once
		closeStdin := func() { once.Do(func() { st.stdin.Close() }) }
		go func() {
			defer closeStdin()
			if _, err := io.Copy(st.stdin, o.stdin); err != nil {
				fmt.Fprintf(os.Stderr, "stdin copy: %v\n", err)
			}
		}()
		go func() {
			defer closeStdin()
			io.Copy(io.Discard, st.stdin)
		}()
	}
	var wg sync.WaitGroup
	pump := func(dst io.Writer, src io.Reader) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer io.Copy(io.Discard, src)
			if _, err := io.Copy(dst, src); err != nil {
				fmt.Fprintf(os.Stderr, "output copy: %v\n", err)
			}
		}()
	}
	if st.stdout != nil {
		pump(o.stdout, st.stdout)
	}
	if st.stderr != nil {
		pump(o.stderr, st.stderr)
	}
	wg.Wait()
	return <-verdict
}

func streamV1(s *session, o *streamOptions) error {
	st, err := createRemoteCommandStreams(s, o, false)
	if err != nil {
		return err
	}
	for _, x := range []*spdystream.Stream{st.errorStream, st.stdin, st.stdout, st.stderr} {
		if x != nil {
			defer x.Reset()
		}
	}
	errs := make(chan error, 1)
	go func() {
		message, err := io.ReadAll(st.errorStream)
		if err != nil && err != io.EOF {
			errs <- fmt.Errorf("Error reading from error stream: %s", err)
			return
		}
		if len(message) > 0 {
			errs <- fmt.Errorf("Error executing remote command: %s", message)
		}
	}()
	if st.stdin != nil {
		go io.Copy(st.stdin, o.stdin) // never half-closed in v1
	}
	done := make(chan struct{}, 2)
	wait := 0
	for _, pair := range []struct {
		dst io.Writer
		src *spdystream.Stream
	}{{o.stdout, st.stdout}, {o.stderr, st.stderr}} {
		if pair.src == nil {
			continue
		}
		wait++
		go func(dst io.Writer, src io.Reader) {
			io.Copy(dst, src)
			done <- struct{}{}
		}(pair.dst, pair.src)
	}
	for wait > 0 {
		select {
		case <-done:
			wait--
		case err := <-errs:
			return err
		}
	}
	return nil
}

// runRemoteCommand negotiates, runs the chosen protocol and closes the session.
func runRemoteCommand(rawURL string, protocols []string, o *streamOptions) (string, error) {
	s, err := upgrade(rawURL, protocols)
	if err != nil {
		return "", err
	}
	defer s.close()
	switch s.protocol {
	case protoV5, protoV4:
		return s.protocol, streamV2Plus(s, o, true, decodeV4)
	case protoV3:
		return s.protocol, streamV2Plus(s, o, true, decodeText)
	case protoV2:
		return s.protocol, streamV2Plus(s, o, false, decodeText)
	case "", protoV1:
		return protoV1, streamV1(s, o)
	default:
		return s.protocol, fmt.Errorf("server chose %q, which was not offered", s.protocol)
	}
}
