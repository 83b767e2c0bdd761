package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"sync"

	"github.com/hamba/avro/v2"
)

// Decode errors. Each error a Decode method returns wraps exactly one of
// these. All but ErrRegistryUnavailable are permanent, so the message belongs
// on a dead-letter topic. No error message carries a decoded field value.
var (
	// ErrFraming means the message is empty, too short for its header,
	// larger than Config.MaxMessageSize, or starts with an unknown marker.
	ErrFraming = errors.New("schemas: unrecognised framing")
	// ErrUnknownSchema means the fingerprint or registry id names no known
	// version of the expected envelope.
	ErrUnknownSchema = errors.New("schemas: unknown writer schema")
	// ErrIncompatibleSchema means the registry's writer schema does not
	// parse, or cannot be read with the current schema.
	ErrIncompatibleSchema = errors.New("schemas: incompatible writer schema")
	// ErrMalformed means the body does not decode with the writer schema,
	// has trailing bytes, or breaks an envelope rule (such as an OK
	// response carrying an Error).
	ErrMalformed = errors.New("schemas: malformed message")
	// ErrNoRegistry means a message uses the Confluent framing but the
	// codec has no SchemaRegistry.
	ErrNoRegistry = errors.New("schemas: confluent framing without a schema registry")
	// ErrRegistryUnavailable means the SchemaRegistry failed for a reason
	// other than an unknown id. It is transient: retry the message.
	ErrRegistryUnavailable = errors.New("schemas: schema registry unavailable")
)

// ErrInvalidMessage is returned by the Encode methods for a value the schema
// cannot carry: a nil union member, an unknown enum symbol, or a status that
// does not match its result.
var ErrInvalidMessage = errors.New("schemas: invalid message")

// SchemaRegistry looks up writer schemas for the Confluent wire format.
type SchemaRegistry interface {
	// SchemaByID returns the schema text registered under id. It returns an
	// error wrapping ErrUnknownSchema when the registry has no such id; any
	// other error is taken as transient and not cached.
	SchemaByID(ctx context.Context, id int) (string, error)
}

// DefaultMaxMessageSize is the default Config.MaxMessageSize, the broker
// default for message.max.bytes.
const DefaultMaxMessageSize = 1 << 20

// Config configures a Codec. The zero value is valid.
type Config struct {
	// Registry resolves Confluent schema ids. Without it, Confluent-framed
	// messages fail with ErrNoRegistry.
	Registry SchemaRegistry
	// MaxMessageSize bounds the size of a message to decode, and so the
	// largest string or array the decoder will allocate for a hostile
	// length prefix. Zero means DefaultMaxMessageSize.
	MaxMessageSize int
}

func (c *Config) setDefaults() {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
}

func (c Config) validate() error {
	if c.MaxMessageSize < HeaderSize {
		return fmt.Errorf("schemas: MaxMessageSize %d is below the %d-byte header", c.MaxMessageSize, HeaderSize)
	}
	return nil
}

// Codec encodes and decodes the envelopes. It is safe for concurrent use.
type Codec struct {
	api            avro.API
	registry       SchemaRegistry
	maxMessageSize int
	compat         *avro.SchemaCompatibility
	// memberNames maps the Go type of every union record (*Login, ...) to
	// its Avro full name, to look up the version that writes it.
	memberNames map[reflect.Type]string

	request      envelopeCodec
	response     envelopeCodec
	event        envelopeCodec
	notification envelopeCodec

	readers sync.Pool // *avro.Reader
	writers sync.Pool // *avro.Writer
}

// envelopeCodec holds what one envelope needs at run time.
type envelopeCodec struct {
	env    Envelope
	reader avro.Schema
	// current writes what writers has no entry for, such as a record the
	// schema lacks, so that hamba reports why it cannot.
	current writer
	// writers maps each record and symbol of the current schema to the
	// oldest published version that carries them, so that a client built
	// against that version reads the message. Immutable after NewCodec.
	writers map[writerKey]*writer
	// known maps the fingerprint of every published version to the schema
	// that reads it into the current Go types. Immutable after NewCodec.
	known map[uint64]avro.Schema

	mu   sync.Mutex
	byID map[int]registryEntry // Confluent id -> read schema or permanent error
}

type registryEntry struct {
	schema avro.Schema
	err    error
}

// NewCodec parses the embedded schemas and their history, and resolves every
// published version against the current one.
func NewCodec(cfg Config) (*Codec, error) {
	return newCodec(cfg, files)
}

// newCodec builds a codec from the schema files in fsys, so that tests can
// supply a history of their own.
func newCodec(cfg Config, fsys fs.FS) (*Codec, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	api := avro.Config{
		// Fail on a union member without a Go type instead of decoding it
		// into a map[string]any.
		UnionResolutionError: true,
		MaxByteSliceSize:     cfg.MaxMessageSize,
		MaxSliceAllocSize:    cfg.MaxMessageSize,
		// Write array blocks as Java's encoder does, a count without a
		// byte size, so that both write the same bytes (every reader
		// accepts either form).
		DisableBlockSizeHeader: true,
	}.Freeze()
	registerUnionTypes(api)
	c := &Codec{
		api:            api,
		registry:       cfg.Registry,
		maxMessageSize: cfg.MaxMessageSize,
		compat:         avro.NewSchemaCompatibility(),
		memberNames:    map[reflect.Type]string{},
	}
	for _, m := range unionMembers() {
		c.memberNames[reflect.PointerTo(reflect.TypeOf(m.record))] = m.name
	}
	c.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
	c.writers.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(api)) }
	envelopes := []struct {
		ec  *envelopeCodec
		env Envelope
	}{
		{&c.request, EnvelopeRequest},
		{&c.response, EnvelopeResponse},
		{&c.event, EnvelopeEvent},
		{&c.notification, EnvelopeNotification},
	}
	for _, e := range envelopes {
		if err := c.initEnvelope(e.ec, e.env, fsys); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Codec) initEnvelope(ec *envelopeCodec, env Envelope, fsys fs.FS) error {
	src, err := source(fsys, env)
	if err != nil {
		return err
	}
	reader, err := parse(src)
	if err != nil {
		return fmt.Errorf("%s: %w", env, err)
	}
	if err := c.checkUnionTypes(reader); err != nil {
		return fmt.Errorf("%s: %w", env, err)
	}
	versions, err := loadHistory(fsys, env)
	if err != nil {
		return err
	}
	fp := Fingerprint(reader)
	ec.env = env
	ec.reader = reader
	ec.current = writer{schema: reader, header: header(fp)}
	ec.known = map[uint64]avro.Schema{fp: reader}
	ec.byID = map[int]registryEntry{}
	for _, v := range versions {
		if _, ok := ec.known[v.fingerprint]; ok {
			continue
		}
		resolved, err := c.compat.Resolve(reader, v.schema)
		if err != nil {
			return fmt.Errorf("%s: current schema cannot read history v%d: %w", env, v.number, err)
		}
		ec.known[v.fingerprint] = resolved
	}
	// goavro's fingerprint of each version names the same schema.
	for _, v := range versions {
		alias := crc64Avro([]byte(goavroCanonicalForm(v.schema)))
		if _, ok := ec.known[alias]; !ok {
			ec.known[alias] = ec.known[v.fingerprint]
		}
	}
	published := make([]writer, len(versions))
	for i, v := range versions {
		published[i] = writer{version: v.number, schema: v.schema, header: header(v.fingerprint)}
	}
	ec.writers, err = chooseWriters(env, &ec.current, published)
	return err
}

// checkUnionTypes makes sure every record in a union field of the envelope
// has a registered Go type, so that a record added to a union without one
// fails here rather than on the first message that uses it.
func (c *Codec) checkUnionTypes(s avro.Schema) error {
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return fmt.Errorf("top-level schema is a %s, want a record", s.Type())
	}
	for _, f := range rec.Fields() {
		u, ok := f.Type().(*avro.UnionSchema)
		if !ok || u.Nullable() {
			continue
		}
		for _, t := range u.Types() {
			named, ok := t.(avro.NamedSchema)
			if !ok {
				continue
			}
			if _, err := c.api.TypeOf(named.FullName()); err != nil {
				return fmt.Errorf("union field %s: record %s has no Go type", f.Name(), named.FullName())
			}
		}
	}
	return nil
}

// EncodeRequest returns req in single-object encoding.
func (c *Codec) EncodeRequest(req *Request) ([]byte, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: %s: nil request", ErrInvalidMessage, EnvelopeRequest)
	}
	if why := checkMember("operation", req.Operation); why != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidMessage, EnvelopeRequest, why)
	}
	w := wireRequest{
		RequestID: req.RequestID,
		Deadline:  req.Deadline,
		Client:    req.Client,
		Operation: req.Operation,
	}
	return c.encode(&c.request, writerKey{member: c.memberName(req.Operation)}, &w)
}

// OperationBytes returns the Avro binary encoding of op as a member of the
// request's operation union (its union index and its fields), the same
// bytes whatever the request around it: what identifies a request's content
// for idempotency.
func (c *Codec) OperationBytes(op Operation) ([]byte, error) {
	b, err := c.EncodeRequest(&Request{Operation: op})
	if err != nil {
		return nil, err
	}
	// The header, then an empty requestId, a null deadline and an empty
	// client (empty clientId, null ip, null userAgent): one byte each.
	return b[HeaderSize+5:], nil
}

// DecodeRequest decodes a request in single-object or, with a registry,
// Confluent framing. ctx bounds the registry lookup.
func (c *Codec) DecodeRequest(ctx context.Context, data []byte) (*Request, error) {
	var w wireRequest
	if err := c.decode(ctx, &c.request, data, &w); err != nil {
		return nil, err
	}
	op, ok := to[Operation](w.Operation)
	if !ok {
		return nil, fmt.Errorf("%w: %s: union member %T is not an Operation", ErrMalformed, EnvelopeRequest, w.Operation)
	}
	return &Request{
		RequestID: w.RequestID,
		Deadline:  w.Deadline,
		Client:    w.Client,
		Operation: op,
	}, nil
}

// EncodeResponse returns resp in single-object encoding.
func (c *Codec) EncodeResponse(resp *Response) ([]byte, error) {
	if resp == nil {
		return nil, fmt.Errorf("%w: %s: nil response", ErrInvalidMessage, EnvelopeResponse)
	}
	if why := checkResponse(resp.Status, resp.Result); why != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidMessage, EnvelopeResponse, why)
	}
	w := wireResponse{
		RequestID: resp.RequestID,
		Status:    resp.Status,
		Result:    resp.Result,
	}
	return c.encode(&c.response, writerKey{member: c.memberName(resp.Result), symbol: string(resp.Status)}, &w)
}

// DecodeResponse decodes a response in single-object or, with a registry,
// Confluent framing. ctx bounds the registry lookup.
func (c *Codec) DecodeResponse(ctx context.Context, data []byte) (*Response, error) {
	var w wireResponse
	if err := c.decode(ctx, &c.response, data, &w); err != nil {
		return nil, err
	}
	res, ok := to[Result](w.Result)
	if !ok {
		return nil, fmt.Errorf("%w: %s: union member %T is not a Result", ErrMalformed, EnvelopeResponse, w.Result)
	}
	if why := checkResponse(w.Status, res); why != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrMalformed, EnvelopeResponse, why)
	}
	return &Response{
		RequestID: w.RequestID,
		Status:    w.Status,
		Result:    res,
	}, nil
}

// EncodeEvent returns ev in single-object encoding.
func (c *Codec) EncodeEvent(ev *Event) ([]byte, error) {
	if ev == nil {
		return nil, fmt.Errorf("%w: %s: nil event", ErrInvalidMessage, EnvelopeEvent)
	}
	if why := checkMember("payload", ev.Payload); why != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidMessage, EnvelopeEvent, why)
	}
	w := wireEvent{
		EventID:    ev.EventID,
		OccurredAt: ev.OccurredAt,
		RequestID:  ev.RequestID,
		UserID:     ev.UserID,
		ClientID:   ev.ClientID,
		IP:         ev.IP,
		Payload:    ev.Payload,
	}
	return c.encode(&c.event, writerKey{member: c.memberName(ev.Payload)}, &w)
}

// DecodeEvent decodes an event in single-object or, with a registry,
// Confluent framing. ctx bounds the registry lookup.
func (c *Codec) DecodeEvent(ctx context.Context, data []byte) (*Event, error) {
	var w wireEvent
	if err := c.decode(ctx, &c.event, data, &w); err != nil {
		return nil, err
	}
	p, ok := to[Payload](w.Payload)
	if !ok {
		return nil, fmt.Errorf("%w: %s: union member %T is not a Payload", ErrMalformed, EnvelopeEvent, w.Payload)
	}
	return &Event{
		EventID:    w.EventID,
		OccurredAt: w.OccurredAt,
		RequestID:  w.RequestID,
		UserID:     w.UserID,
		ClientID:   w.ClientID,
		IP:         w.IP,
		Payload:    p,
	}, nil
}

// EncodeNotification returns n in single-object encoding.
func (c *Codec) EncodeNotification(n *Notification) ([]byte, error) {
	if why := checkMember("notification", n); why != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidMessage, EnvelopeNotification, why)
	}
	return c.encode(&c.notification, writerKey{symbol: string(n.Kind)}, n)
}

// DecodeNotification decodes a notification in single-object or, with a
// registry, Confluent framing. ctx bounds the registry lookup.
func (c *Codec) DecodeNotification(ctx context.Context, data []byte) (*Notification, error) {
	var n Notification
	if err := c.decode(ctx, &c.notification, data, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// maxPooledWriter keeps a writer grown by one huge message out of the pool.
const maxPooledWriter = 64 << 10

// encode writes v with the version that key chooses: the oldest published
// version that carries the message.
func (c *Codec) encode(ec *envelopeCodec, key writerKey, v any) ([]byte, error) {
	version, ok := ec.writers[key]
	if !ok {
		version = &ec.current
	}
	w := c.writers.Get().(*avro.Writer)
	w.Reset(nil)
	w.Error = nil
	_, _ = w.Write(version.header[:])
	w.WriteVal(version.schema, v)
	err := w.Error
	var out []byte
	if err == nil {
		out = bytes.Clone(w.Buffer())
	}
	if cap(w.Buffer()) <= maxPooledWriter {
		w.Reset(nil)
		w.Error = nil
		c.writers.Put(w)
	}
	if err != nil {
		// hamba's encode errors name fields, types and enum symbols, never
		// string values.
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidMessage, ec.env, err)
	}
	return out, nil
}

// errTrailing is reported, wrapped in ErrMalformed, when bytes follow the body.
var errTrailing = errors.New("trailing bytes after the body")

func (c *Codec) decode(ctx context.Context, ec *envelopeCodec, data []byte, v any) error {
	if len(data) > c.maxMessageSize {
		return fmt.Errorf("%w: %s: %d bytes exceed the %d-byte limit", ErrFraming, ec.env, len(data), c.maxMessageSize)
	}
	writer, body, err := c.frame(ctx, ec, data)
	if err != nil {
		return err
	}
	r := c.readers.Get().(*avro.Reader)
	r.Reset(body)
	r.Error = nil
	r.ReadVal(writer, v)
	err = r.Error
	if err == nil {
		// Peek sets io.EOF at the end of the input and leaves Error nil
		// when a byte remains. hamba's Unmarshal would hide both a
		// truncated body (it swallows io.EOF) and trailing bytes.
		r.Peek()
		if r.Error == nil {
			err = errTrailing
		}
	}
	r.Reset(nil)
	r.Error = nil
	c.readers.Put(r)
	if err != nil {
		// hamba's decode errors name the field path and the failed check,
		// never the bytes or values read.
		return fmt.Errorf("%w: %s: %v", ErrMalformed, ec.env, err)
	}
	return nil
}

// frame splits data into its writer's read schema and the body.
func (c *Codec) frame(ctx context.Context, ec *envelopeCodec, data []byte) (avro.Schema, []byte, error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: %s: empty message", ErrFraming, ec.env)
	}
	switch data[0] {
	case soeMagic0:
		if len(data) < HeaderSize {
			return nil, nil, fmt.Errorf("%w: %s: %d bytes, shorter than a single-object header", ErrFraming, ec.env, len(data))
		}
		if data[1] != soeMagic1 {
			return nil, nil, fmt.Errorf("%w: %s: bad single-object marker %#02x %#02x", ErrFraming, ec.env, data[0], data[1])
		}
		fp := binary.LittleEndian.Uint64(data[2:HeaderSize])
		s, ok := ec.known[fp]
		if !ok {
			return nil, nil, fmt.Errorf("%w: %s: fingerprint %016x is no published version", ErrUnknownSchema, ec.env, fp)
		}
		return s, data[HeaderSize:], nil
	case 0x00:
		if c.registry == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoRegistry, ec.env)
		}
		if len(data) < 5 {
			return nil, nil, fmt.Errorf("%w: %s: %d bytes, shorter than a Confluent header", ErrFraming, ec.env, len(data))
		}
		id := int(int32(binary.BigEndian.Uint32(data[1:5])))
		s, err := c.registrySchema(ctx, ec, id)
		if err != nil {
			return nil, nil, err
		}
		return s, data[5:], nil
	default:
		return nil, nil, fmt.Errorf("%w: %s: unknown marker byte %#02x", ErrFraming, ec.env, data[0])
	}
}

// registrySchema returns the schema that reads data written with registry
// schema id into the current types. Successes and permanent failures are
// cached per id (registry ids are immutable); transient failures are not.
// Concurrent misses for one id may each ask the registry; the answers agree.
func (c *Codec) registrySchema(ctx context.Context, ec *envelopeCodec, id int) (avro.Schema, error) {
	if id < 0 {
		return nil, fmt.Errorf("%w: %s: negative schema id %d", ErrUnknownSchema, ec.env, id)
	}
	ec.mu.Lock()
	ent, ok := ec.byID[id]
	ec.mu.Unlock()
	if ok {
		return ent.schema, ent.err
	}

	src, err := c.registry.SchemaByID(ctx, id)
	if err != nil {
		if errors.Is(err, ErrUnknownSchema) {
			return nil, fmt.Errorf("%w: %s: schema id %d", ErrUnknownSchema, ec.env, id)
		}
		return nil, fmt.Errorf("%w: %s: schema id %d: %w", ErrRegistryUnavailable, ec.env, id, err)
	}
	ent = c.resolveRegistrySchema(ec, id, src)
	ec.mu.Lock()
	ec.byID[id] = ent
	ec.mu.Unlock()
	return ent.schema, ent.err
}

func (c *Codec) resolveRegistrySchema(ec *envelopeCodec, id int, src string) registryEntry {
	writer, err := parse([]byte(src))
	if err != nil {
		return registryEntry{err: fmt.Errorf("%w: %s: schema id %d: %v", ErrIncompatibleSchema, ec.env, id, err)}
	}
	if s, ok := ec.known[Fingerprint(writer)]; ok {
		return registryEntry{schema: s}
	}
	s, err := c.compat.Resolve(ec.reader, writer)
	if err != nil {
		return registryEntry{err: fmt.Errorf("%w: %s: schema id %d: %v", ErrIncompatibleSchema, ec.env, id, err)}
	}
	return registryEntry{schema: s}
}
