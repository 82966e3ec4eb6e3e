// The connection half of the client: how Kubernetes' SPDY round tripper
// (k8s.io/apimachinery/pkg/util/httpstream/spdy) turns an HTTP request into a
// moby/spdystream session. Reproduced here:
//
//   - the upgrade is a plain HTTP/1.1 request written with http.Request.Write
//     onto a fresh TCP connection (so Host comes from the URL, Go adds
//     "User-Agent: Go-http-client/1.1" and, for a bodiless POST,
//     "Content-Length: 0"); it carries "Connection: Upgrade",
//     "Upgrade: SPDY/3.1" and one "X-Stream-Protocol-Version" line per offered
//     protocol, in the caller's order of preference;
//   - the response is parsed with http.ReadResponse from a bufio.Reader laid
//     over the socket; the SPDY session is then built on the raw socket, so any
//     bytes the buffered reader had already pulled past the 101 are lost, just
//     as upstream loses them;
//   - the upgrade counts as failed unless the status is 101 and both
//     Connection and Upgrade (lowercased) contain the expected tokens; the body
//     of a failed upgrade becomes the error text;
//   - the negotiated protocol is whatever the server echoed in
//     X-Stream-Protocol-Version ("" when it sent nothing);
//   - spdystream.NewConnection(conn, false) (client side, odd stream ids) and
//     Serve running in its own goroutine with a handler that accepts any stream
//     the server opens (upstream's no-op handler: accept, register, reply);
//   - a PING every 5 s (the ping period client-go's transport configures);
//   - every stream is created with CreateStream(headers, nil, false) and then
//     WaitTimeout(30 s) for the SYN_REPLY before the next one is opened;
//   - closing resets every stream this side created, then closes the session.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

// streamReplyTimeout is how long upstream waits for each SYN_REPLY.
const streamReplyTimeout = 30 * time.Second

// pingPeriod is the keep-alive ping interval client-go's SPDY transport uses.
const pingPeriod = 5 * time.Second

type session struct {
	conn     *spdystream.Connection
	raw      net.Conn
	protocol string

	mu      sync.Mutex
	streams []*spdystream.Stream
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// upgrade dials the streaming URL and negotiates SPDY/3.1 with the offered protocols.
func upgrade(rawURL string, protocols []string) (*session, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("error creating request: %v", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("only http:// streaming URLs are supported here, got %q", rawURL)
	}
	req, err := http.NewRequest(http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("error creating request: %v", err)
	}
	for _, p := range protocols {
		req.Header.Add("X-Stream-Protocol-Version", p)
	}
	req.Header.Add("Connection", "Upgrade")
	req.Header.Add("Upgrade", "SPDY/3.1")

	raw, err := net.DialTimeout("tcp", hostPort(u), 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("error sending request: %v", err)
	}
	if err := req.Write(raw); err != nil {
		raw.Close()
		return nil, fmt.Errorf("error sending request: %v", err)
	}
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("error sending request: %v", err)
	}
	connection := strings.ToLower(resp.Header.Get("Connection"))
	upg := strings.ToLower(resp.Header.Get("Upgrade"))
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.Contains(connection, "upgrade") || !strings.Contains(upg, "spdy/3.1") {
		body, rerr := io.ReadAll(resp.Body)
		raw.Close()
		text := strings.TrimSpace(string(body))
		if rerr != nil {
			text = "unable to read error from server response"
		}
		return nil, fmt.Errorf("unable to upgrade connection: %s", text)
	}
	if n := br.Buffered(); n > 0 && os.Getenv("DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "debug: %d byte(s) arrived with the 101 response and are dropped (as upstream drops them)\n", n)
	}

	conn, err := spdystream.NewConnection(raw, false)
	if err != nil {
		raw.Close()
		return nil, err
	}
	s := &session{conn: conn, raw: raw, protocol: resp.Header.Get("X-Stream-Protocol-Version")}
	go conn.Serve(s.acceptStream)
	go s.pings()
	return s, nil
}

// acceptStream mirrors upstream's handling of server-initiated streams with the no-op handler.
func (s *session) acceptStream(st *spdystream.Stream) {
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	st.SendReply(http.Header{}, false)
}

func (s *session) pings() {
	t := time.NewTicker(pingPeriod)
	defer t.Stop()
	for {
		select {
		case <-s.conn.CloseChan():
			return
		case <-t.C:
			if _, err := s.conn.Ping(); err != nil {
				fmt.Fprintf(os.Stderr, "ping failed: %v\n", err)
			}
		}
	}
}

// createStream opens one stream and waits for its reply, as upstream's connection.CreateStream.
func (s *session) createStream(headers http.Header) (*spdystream.Stream, error) {
	st, err := s.conn.CreateStream(headers, nil, false)
	if err != nil {
		return nil, err
	}
	if err := st.WaitTimeout(streamReplyTimeout); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	return st, nil
}

// removeStreams forgets streams without touching them (port-forward does this per connection).
func (s *session) removeStreams(gone ...*spdystream.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.streams[:0]
	for _, st := range s.streams {
		drop := false
		for _, g := range gone {
			if st == g {
				drop = true
			}
		}
		if !drop {
			kept = append(kept, st)
		}
	}
	s.streams = kept
}

// close resets every registered stream and then closes the session.
func (s *session) close() error {
	s.mu.Lock()
	for _, st := range s.streams {
		st.Reset()
	}
	s.streams = nil
	s.mu.Unlock()
	return s.conn.Close()
}
