package main

// A CRI client without generated Go code: request and response messages are
// dynamicpb messages built from the FileDescriptorSet that protoc writes for
// api/cri/v1/api.proto, filled from JSON and read back as JSON trees.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// grpc-go 1.33 marshals through github.com/golang/protobuf 1.3, which only
// knows generated structs. This codec keeps the name "proto" (so the wire
// content-type stays "application/grpc", as the kubelet's) and marshals with
// the APIv2 runtime, which handles dynamicpb messages.
type v2Codec struct{}

func (v2Codec) Name() string { return "proto" }

func (v2Codec) Marshal(v interface{}) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("codec: %T is not a protobuf message", v)
	}
	return proto.Marshal(m)
}

func (v2Codec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("codec: %T is not a protobuf message", v)
	}
	return proto.Unmarshal(data, m)
}

func init() { encoding.RegisterCodec(v2Codec{}) }

// The kubelet's CRI client limit on received messages (16 MiB).
const maxMsgSize = 16 * 1024 * 1024

// addressAndDialer splits a CRI endpoint the way the kubelet does for unix
// sockets: "unix:///run/x.sock" gives the address "/run/x.sock" and a dialer
// that connects to that path. The address is also the gRPC target, so grpc-go
// sends it as the HTTP/2 :authority.
func addressAndDialer(endpoint string) (string, func(context.Context, string) (net.Conn, error), error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", nil, fmt.Errorf("endpoint %q: %v", endpoint, err)
	}
	if u.Scheme != "unix" {
		return "", nil, fmt.Errorf("endpoint %q: only unix:// endpoints are supported", endpoint)
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", addr)
	}
	return u.Path, dial, nil
}

// dialCRI connects like the kubelet 1.26 remote runtime service: plaintext
// transport credentials, the unix dialer above, 16 MiB receive limit, the bare
// socket path as target. authority, when set, overrides :authority (a
// development aid only; the kubelet never sets it).
func dialCRI(endpoint, authority string) (*grpc.ClientConn, error) {
	addr, dialer, err := addressAndDialer(endpoint)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		// grpc-go 1.33 predates credentials/insecure; WithInsecure is the same plaintext transport.
		grpc.WithInsecure(),
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
	}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return grpc.DialContext(ctx, addr, opts...)
}

// criClient invokes CRI methods by name with JSON requests.
type criClient struct {
	conn  *grpc.ClientConn
	files map[string]protoreflect.ServiceDescriptor
}

func loadServices(descriptorSet string) (map[string]protoreflect.ServiceDescriptor, error) {
	raw, err := os.ReadFile(descriptorSet)
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%s: not a FileDescriptorSet: %v", descriptorSet, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", descriptorSet, err)
	}
	out := map[string]protoreflect.ServiceDescriptor{}
	for _, name := range []string{"RuntimeService", "ImageService"} {
		d, err := files.FindDescriptorByName(protoreflect.FullName("runtime.v1." + name))
		if err != nil {
			return nil, fmt.Errorf("%s: runtime.v1.%s: %v", descriptorSet, name, err)
		}
		out[name] = d.(protoreflect.ServiceDescriptor)
	}
	return out, nil
}

// method finds "RuntimeService/Version" style names.
func (c *criClient) method(name string) (protoreflect.MethodDescriptor, string, error) {
	parts := strings.SplitN(name, "/", 2)
	svc, ok := c.files[parts[0]]
	if !ok || len(parts) != 2 {
		return nil, "", fmt.Errorf("unknown method %q", name)
	}
	md := svc.Methods().ByName(protoreflect.Name(parts[1]))
	if md == nil {
		return nil, "", fmt.Errorf("unknown method %q", name)
	}
	return md, "/" + string(svc.FullName()) + "/" + parts[1], nil
}

func request(md protoreflect.MethodDescriptor, reqJSON string) (*dynamicpb.Message, error) {
	in := dynamicpb.NewMessage(md.Input())
	if reqJSON != "" {
		if err := protojson.Unmarshal([]byte(reqJSON), in); err != nil {
			return nil, fmt.Errorf("%s request %s: %v", md.Name(), reqJSON, err)
		}
	}
	return in, nil
}

var toJSON = protojson.MarshalOptions{EmitUnpopulated: true}

// tree turns a response into a generic JSON value (int64 as strings, enums as names).
func tree(m proto.Message) (obj, error) {
	b, err := toJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out obj
	return out, json.Unmarshal(b, &out)
}

// call runs a unary method; reqJSON uses the CRI's JSON names (camelCase or proto names).
func (c *criClient) call(ctx context.Context, name, reqJSON string) (obj, error) {
	md, full, err := c.method(name)
	if err != nil {
		return nil, err
	}
	in, err := request(md, reqJSON)
	if err != nil {
		return nil, err
	}
	out := dynamicpb.NewMessage(md.Output())
	if err := c.conn.Invoke(ctx, full, in, out); err != nil {
		return nil, err
	}
	return tree(out)
}

// serverStream opens a server-streaming method and returns a receive function
// that yields io.EOF at the end of the stream.
func (c *criClient) serverStream(ctx context.Context, name, reqJSON string) (func() (obj, error), error) {
	md, full, err := c.method(name)
	if err != nil {
		return nil, err
	}
	if !md.IsStreamingServer() {
		return nil, fmt.Errorf("%s is not a server-streaming method", name)
	}
	in, err := request(md, reqJSON)
	if err != nil {
		return nil, err
	}
	st, err := c.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(in); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	return func() (obj, error) {
		out := dynamicpb.NewMessage(md.Output())
		if err := st.RecvMsg(out); err != nil {
			return nil, err
		}
		return tree(out)
	}, nil
}

// collect reads a server stream to its end.
func collect(recv func() (obj, error)) ([]obj, error) {
	var all []obj
	for {
		m, err := recv()
		if err == io.EOF {
			return all, nil
		}
		if err != nil {
			return all, err
		}
		all = append(all, m)
	}
}

// obj is a decoded JSON object; the getters walk dotted paths and return zero
// values for anything missing, so checks read like the CRI field names.
type obj = map[string]interface{}

func get(v interface{}, path string) interface{} {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v interface{}, path string) string {
	switch x := get(v, path).(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// num reads numbers, including int64 fields (JSON strings in protojson).
func num(v interface{}, path string) int64 {
	switch x := get(v, path).(type) {
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func list(v interface{}, path string) []interface{} {
	l, _ := get(v, path).([]interface{})
	return l
}

// ids returns the "id" (or another key) of every item of a list.
func ids(items []interface{}, key string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, str(it, key))
	}
	return out
}
