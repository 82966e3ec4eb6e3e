package main

// capture: what this client puts on the wire. A plain unix-socket listener
// (no HTTP/2 server library that could reject or rewrite anything) reads the
// client's connection preface and frames, answers its SETTINGS, decodes the
// first HEADERS block with HPACK and prints the header fields.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func readHeaders(conn net.Conn) ([]header, error) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(conn, preface); err != nil {
		return nil, fmt.Errorf("reading the preface: %v", err)
	}
	if !bytes.Equal(preface, []byte(http2.ClientPreface)) {
		return nil, fmt.Errorf("not an HTTP/2 client preface: %q", preface)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		return nil, err
	}
	var block []byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return nil, err
				}
			}
		case *http2.HeadersFrame:
			block = append(block, f.HeaderBlockFragment()...)
			if f.HeadersEnded() {
				return decode(block)
			}
		case *http2.ContinuationFrame:
			block = append(block, f.HeaderBlockFragment()...)
			if f.HeadersEnded() {
				return decode(block)
			}
		}
	}
}

func decode(block []byte) ([]header, error) {
	var out []header
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { out = append(out, header{f.Name, f.Value}) })
	if _, err := dec.Write(block); err != nil {
		return nil, fmt.Errorf("hpack: %v", err)
	}
	return out, dec.Close()
}

// runCapture listens on dir/capture.sock, dials it like the kubelet (with the
// authority override when given), sends one Version call and prints the
// request headers as JSON.
func runCapture(c func(endpoint string) (*criClient, error), dir string) error {
	sock := filepath.Join(dir, "capture.sock")
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()
	got := make(chan []header, 1)
	fail := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			fail <- err
			return
		}
		defer conn.Close()
		h, err := readHeaders(conn)
		if err != nil {
			fail <- err
			return
		}
		got <- h
	}()
	client, err := c("unix://" + sock)
	if err != nil {
		return err
	}
	defer client.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Nobody answers this call: it only has to be sent.
	go func() { _, _ = client.call(ctx, "RuntimeService/Version", `{"version":"v1"}`) }()
	select {
	case h := <-got:
		return json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"socket": sock, "headers": h})
	case err := <-fail:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no request arrived on %s", sock)
	}
}
