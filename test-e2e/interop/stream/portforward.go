// The port-forward half: what client-go's PortForwarder
// (k8s.io/client-go/tools/portforward) does over one SPDY session negotiated
// with the single protocol "portforward.k8s.io".
//
// It listens locally (one listener per forwarded port) and prints
// "Forwarding from ADDR -> PORT". For every accepted connection it takes the
// next request id (0, 1, 2 …, shared by all ports) and:
//   - opens an error stream with headers streamType=error, port=<remote>,
//     requestID=<id> (on the wire: streamtype, port, requestid), waits for the
//     reply and half-closes it at once (it never writes there), then reads it to
//     its end in the background;
//   - opens the data stream with the same headers but streamType=data;
//   - copies data stream → local connection, and local connection → data stream
//     followed by a half-close of the data stream;
//   - once the remote→local copy ends (or local→remote failed) it resets the data
//     stream, then waits for the error stream's end: text there is reported as
//     "an error occurred forwarding L -> R: TEXT" and, as client-go does since
//     1.23, closes the whole session (-keep-on-error keeps it: 1.22 and older,
//     kubectl 1.20 among them, only logged the message).
//
// When the session closes the process exits 1 with "lost connection to pod",
// like kubectl; SIGTERM/SIGINT end it with 0.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const protoPortForward = "portforward.k8s.io"

type forwarder struct {
	s           *session
	keepOnError bool
	mu          sync.Mutex
	nextID      int
}

func (f *forwarder) requestID() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextID
	f.nextID++
	return id
}

func (f *forwarder) handle(local net.Conn, localPort, remotePort int) {
	defer local.Close()
	fmt.Printf("Handling connection for %d\n", localPort)
	id := f.requestID()
	headers := http.Header{}
	headers.Set("streamType", "error")
	headers.Set("port", strconv.Itoa(remotePort))
	headers.Set("requestID", strconv.Itoa(id))
	errorStream, err := f.s.createStream(headers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error creating error stream for port %d -> %d: %v\n", localPort, remotePort, err)
		return
	}
	errorStream.Close()
	defer f.s.removeStreams(errorStream)
	type result struct {
		message []byte
		err     error
	}
	errCh := make(chan result, 1)
	go func() {
		m, err := io.ReadAll(errorStream)
		errCh <- result{m, err}
	}()

	headers.Set("streamType", "data")
	dataStream, err := f.s.createStream(headers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error creating forwarding stream for port %d -> %d: %v\n", localPort, remotePort, err)
		return
	}
	defer f.s.removeStreams(dataStream)

	localError := make(chan struct{})
	remoteDone := make(chan struct{})
	go func() {
		if _, err := io.Copy(local, dataStream); err != nil && !strings.Contains(strings.ToLower(err.Error()), "use of closed network connection") {
			fmt.Fprintf(os.Stderr, "error copying from remote stream to local connection: %v\n", err)
		}
		close(remoteDone)
	}()
	go func() {
		defer dataStream.Close()
		if _, err := io.Copy(dataStream, local); err != nil && !strings.Contains(strings.ToLower(err.Error()), "use of closed network connection") {
			fmt.Fprintf(os.Stderr, "error copying from local connection to remote stream: %v\n", err)
			close(localError)
		}
	}()
	select {
	case <-remoteDone:
	case <-localError:
	}
	dataStream.Reset()
	r := <-errCh
	switch {
	case r.err != nil:
		fmt.Fprintf(os.Stderr, "error reading from error stream for port %d -> %d: %v\n", localPort, remotePort, r.err)
		if !f.keepOnError {
			f.s.conn.Close()
		}
	case len(r.message) > 0:
		fmt.Fprintf(os.Stderr, "an error occurred forwarding %d -> %d: %s\n", localPort, remotePort, string(r.message))
		if !f.keepOnError {
			f.s.conn.Close()
		}
	}
}

func runPortForward(rawURL, listenHost string, ports []int, keepOnError bool) int {
	s, err := upgrade(rawURL, []string{protoPortForward})
	if err != nil {
		fmt.Fprintf(os.Stderr, "error upgrading connection: %v\n", err)
		return 1
	}
	f := &forwarder{s: s, keepOnError: keepOnError}
	var listeners []net.Listener
	for _, remote := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(listenHost, "0"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "unable to create listener: %v\n", err)
			return 1
		}
		listeners = append(listeners, l)
		localPort := l.Addr().(*net.TCPAddr).Port
		fmt.Printf("Forwarding from %s -> %d\n", l.Addr().String(), remote)
		go func(l net.Listener, localPort, remote int) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go f.handle(c, localPort, remote)
			}
		}(l, localPort, remote)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	code := 0
	select {
	case <-sig:
	case <-s.conn.CloseChan():
		fmt.Fprintln(os.Stderr, "lost connection to pod")
		code = 1
	}
	for _, l := range listeners {
		l.Close()
	}
	s.close()
	return code
}
