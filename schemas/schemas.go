package schemas

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// files holds the current schemas and their history. It is read-only.
//
//go:embed auth_request.avsc auth_response.avsc auth_event.avsc auth_notification.avsc history
var files embed.FS

// HeaderSize is the length of a single-object encoding header: the two marker
// bytes and the eight-byte fingerprint.
const HeaderSize = 10

// Single-object encoding marker bytes, from the Avro specification.
const (
	soeMagic0 = 0xC3
	soeMagic1 = 0x01
)

// ErrUnknownEnvelope is returned for an Envelope value that names no schema.
var ErrUnknownEnvelope = errors.New("schemas: unknown envelope")

// Envelope names one of the top-level wire schemas.
type Envelope int

// The envelopes, one per .avsc file.
const (
	EnvelopeRequest      Envelope = iota + 1 // auth_request.avsc, record authworker.AuthRequest
	EnvelopeResponse                         // auth_response.avsc, record authworker.AuthResponse
	EnvelopeEvent                            // auth_event.avsc, record authworker.AuthEvent
	EnvelopeNotification                     // auth_notification.avsc, record authworker.AuthNotification
)

// Envelopes returns every envelope, in a stable order.
func Envelopes() []Envelope {
	return []Envelope{EnvelopeRequest, EnvelopeResponse, EnvelopeEvent, EnvelopeNotification}
}

// String returns the envelope's file stem, such as "auth_request".
func (e Envelope) String() string {
	switch e {
	case EnvelopeRequest:
		return "auth_request"
	case EnvelopeResponse:
		return "auth_response"
	case EnvelopeEvent:
		return "auth_event"
	case EnvelopeNotification:
		return "auth_notification"
	default:
		return "Envelope(" + strconv.Itoa(int(e)) + ")"
	}
}

func (e Envelope) valid() bool {
	return e >= EnvelopeRequest && e <= EnvelopeNotification
}

// Source returns the text of the current schema of e, as embedded.
func Source(e Envelope) ([]byte, error) {
	return source(files, e)
}

func source(fsys fs.FS, e Envelope) ([]byte, error) {
	if !e.valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEnvelope, int(e))
	}
	b, err := fs.ReadFile(fsys, e.String()+".avsc")
	if err != nil {
		return nil, fmt.Errorf("read %s schema: %w", e, err)
	}
	return b, nil
}

// Parse parses the current schema of e. Each call returns a fresh schema.
func Parse(e Envelope) (avro.Schema, error) {
	src, err := Source(e)
	if err != nil {
		return nil, err
	}
	return parse(src)
}

// History returns every published version of e, oldest first; the last one is
// the current schema.
func History(e Envelope) ([]avro.Schema, error) {
	versions, err := loadHistory(files, e)
	if err != nil {
		return nil, err
	}
	out := make([]avro.Schema, len(versions))
	for i, v := range versions {
		out[i] = v.schema
	}
	return out, nil
}

// parse parses schema text with a private name cache: avro.Parse would record
// every named type in hamba's process-wide cache, where two versions of one
// record would overwrite each other.
func parse(src []byte) (avro.Schema, error) {
	s, err := avro.ParseBytesWithCache(src, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	return s, nil
}

// version is one published schema of an envelope.
type version struct {
	number      int
	schema      avro.Schema
	fingerprint uint64
}

// loadHistory reads history/<e>/v1.avsc, v2.avsc, ... from fsys.
func loadHistory(fsys fs.FS, e Envelope) ([]version, error) {
	if !e.valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEnvelope, int(e))
	}
	dir := path.Join("history", e.String())
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s history: %w", e, err)
	}
	var versions []version
	for _, ent := range entries {
		name := ent.Name()
		if ent.IsDir() || path.Ext(name) != ".avsc" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "v"), ".avsc"))
		if err != nil || !strings.HasPrefix(name, "v") || n < 1 {
			return nil, fmt.Errorf("%s history: file %s is not named vN.avsc", e, name)
		}
		src, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s history: %w", e, err)
		}
		s, err := parse(src)
		if err != nil {
			return nil, fmt.Errorf("%s history v%d: %w", e, n, err)
		}
		versions = append(versions, version{number: n, schema: s, fingerprint: Fingerprint(s)})
	}
	slices.SortFunc(versions, func(a, b version) int { return a.number - b.number })
	for i, v := range versions {
		if v.number != i+1 {
			return nil, fmt.Errorf("%s history: versions must be numbered 1..N without gaps, found v%d at position %d", e, v.number, i+1)
		}
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("%s history: no versions", e)
	}
	return versions, nil
}

// CanonicalForm returns the Parsing Canonical Form of s as the Avro
// specification defines it, and as Apache Avro's Java SchemaNormalization
// computes it. It differs from hamba's Schema.String, which keeps
// logicalType and the decimal attributes that the specification strips.
func CanonicalForm(s avro.Schema) string {
	var b strings.Builder
	canonical{}.write(&b, s)
	return b.String()
}

// goavroCanonicalForm is the canonical form as github.com/linkedin/goavro
// computes it: like the specification's, except that a primitive with a
// logical type stays an object, {"type":"long"} (goavro issue #174). Its
// single-object encoding carries the fingerprint of this form, which the
// codec accepts as an alias of the same schema.
func goavroCanonicalForm(s avro.Schema) string {
	var b strings.Builder
	canonical{logicalAsObject: true}.write(&b, s)
	return b.String()
}

// standaloneCanonicalForm returns the Parsing Canonical Form of s as if it
// were a schema of its own: a named type that s refers to but that is
// defined elsewhere in the schema s was parsed from is written out in full
// where s first uses it. Two parts of schemas with the same standalone form
// encode every value the same way, whatever surrounds them.
func standaloneCanonicalForm(s avro.Schema) string {
	var b strings.Builder
	canonical{seen: map[string]bool{}}.write(&b, s)
	return b.String()
}

// canonical writes Parsing Canonical Forms.
type canonical struct {
	// logicalAsObject writes a primitive with a logical type as
	// {"type":"long"}, as goavro does, rather than "long".
	logicalAsObject bool
	// seen, when not nil, makes references self-contained: a named type
	// is written in full the first time it occurs in what is written,
	// wherever hamba found its definition, and by name after that.
	seen map[string]bool
}

// named reports whether the named type called fullName was written before,
// after writing its name if so. It records the type as written.
func (c canonical) named(b *strings.Builder, fullName string) bool {
	if c.seen == nil {
		return false
	}
	if c.seen[fullName] {
		b.WriteString(`"` + fullName + `"`)
		return true
	}
	c.seen[fullName] = true
	return false
}

// write writes the canonical form of s. Names and symbols need no JSON
// escaping: the parser only admits [A-Za-z_][A-Za-z0-9_]* and dots.
func (c canonical) write(b *strings.Builder, s avro.Schema) {
	switch s := s.(type) {
	case *avro.PrimitiveSchema:
		if c.logicalAsObject && s.Logical() != nil {
			b.WriteString(`{"type":"` + string(s.Type()) + `"}`)
			return
		}
		b.WriteString(`"` + string(s.Type()) + `"`)
	case *avro.RecordSchema:
		if c.named(b, s.FullName()) {
			return
		}
		// Java writes "record" for error types too.
		b.WriteString(`{"name":"` + s.FullName() + `","type":"record","fields":[`)
		for i, f := range s.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":"` + f.Name() + `","type":`)
			c.write(b, f.Type())
			b.WriteByte('}')
		}
		b.WriteString(`]}`)
	case *avro.EnumSchema:
		if c.named(b, s.FullName()) {
			return
		}
		b.WriteString(`{"name":"` + s.FullName() + `","type":"enum","symbols":[`)
		for i, sym := range s.Symbols() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + sym + `"`)
		}
		b.WriteString(`]}`)
	case *avro.ArraySchema:
		b.WriteString(`{"type":"array","items":`)
		c.write(b, s.Items())
		b.WriteByte('}')
	case *avro.MapSchema:
		b.WriteString(`{"type":"map","values":`)
		c.write(b, s.Values())
		b.WriteByte('}')
	case *avro.UnionSchema:
		b.WriteByte('[')
		for i, t := range s.Types() {
			if i > 0 {
				b.WriteByte(',')
			}
			c.write(b, t)
		}
		b.WriteByte(']')
	case *avro.FixedSchema:
		if c.named(b, s.FullName()) {
			return
		}
		b.WriteString(`{"name":"` + s.FullName() + `","type":"fixed","size":` + strconv.Itoa(s.Size()) + `}`)
	case *avro.RefSchema:
		if c.seen != nil {
			c.write(b, s.Schema())
			return
		}
		b.WriteString(`"` + s.Schema().FullName() + `"`)
	default:
		// Every schema hamba can parse is one of the above; fall back to
		// hamba's own form rather than guess.
		b.WriteString(s.String())
	}
}

// Fingerprint returns the CRC-64-AVRO fingerprint of the Parsing Canonical
// Form of s, the value single-object encoding puts in its header.
func Fingerprint(s avro.Schema) uint64 {
	return crc64Avro([]byte(CanonicalForm(s)))
}

// Header returns the single-object encoding header for data written with s:
// C3 01, then Fingerprint(s) in little-endian byte order.
func Header(s avro.Schema) [HeaderSize]byte {
	return header(Fingerprint(s))
}

func header(fp uint64) [HeaderSize]byte {
	var h [HeaderSize]byte
	h[0], h[1] = soeMagic0, soeMagic1
	binary.LittleEndian.PutUint64(h[2:], fp)
	return h
}

// crc64Empty is the CRC-64-AVRO polynomial and initial value from the Avro
// specification.
const crc64Empty = 0xc15d213aa4d7a795

// crc64Avro computes the CRC-64-AVRO (Rabin) fingerprint of b bit by bit. It
// runs only when a codec is built or a header is asked for, so it does without
// the specification's 256-entry table.
func crc64Avro(b []byte) uint64 {
	fp := uint64(crc64Empty)
	for _, c := range b {
		fp ^= uint64(c)
		for range 8 {
			fp = (fp >> 1) ^ (crc64Empty & -(fp & 1))
		}
	}
	return fp
}
