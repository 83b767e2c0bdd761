package schemas

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// TestHistoryIsFrozen pins the fingerprint of every published version, so
// that editing a file under history/ instead of adding one fails. Append the
// fingerprint of each new version (the test prints it).
func TestHistoryIsFrozen(t *testing.T) {
	want := map[Envelope][]string{
		EnvelopeRequest:      {"-2384515174722237013", "-6208951697253770842"},
		EnvelopeResponse:     {"-672011383832369348", "2972128717561907999"},
		EnvelopeEvent:        {"4883581274545200414", "-1946200723684541563"},
		EnvelopeNotification: {"-1045952234786733681"},
	}
	for _, env := range Envelopes() {
		t.Run(env.String(), func(t *testing.T) {
			versions, err := loadHistory(files, env)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range versions {
				got = append(got, strconv.FormatInt(int64(v.fingerprint), 10))
			}
			if !reflect.DeepEqual(got, want[env]) {
				t.Errorf("fingerprints of v1..vN: got %q, want %q", got, want[env])
			}
		})
	}
}

// TestHistoryLatestIsCurrent makes sure a change to the current schema is
// published in history before it ships.
func TestHistoryLatestIsCurrent(t *testing.T) {
	for _, env := range Envelopes() {
		t.Run(env.String(), func(t *testing.T) {
			current, err := Source(env)
			if err != nil {
				t.Fatal(err)
			}
			versions, err := loadHistory(files, env)
			if err != nil {
				t.Fatal(err)
			}
			latest := path.Join("history", env.String(), "v"+strconv.Itoa(len(versions))+".avsc")
			b, err := files.ReadFile(latest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, current) {
				t.Errorf("%s differs from %s.avsc: copy the current file to history/%s/v%d.avsc", latest, env, env, len(versions)+1)
			}
		})
	}
}

// TestHistoryBackwardTransitive checks the current schema can read every
// published version, with hamba's compatibility checker.
func TestHistoryBackwardTransitive(t *testing.T) {
	for _, env := range Envelopes() {
		current, err := Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		versions, err := loadHistory(files, env)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			t.Run(fmt.Sprintf("%s/v%d", env, v.number), func(t *testing.T) {
				if err := avro.NewSchemaCompatibility().Compatible(current, v.schema); err != nil {
					t.Errorf("current %s cannot read v%d: %v", env, v.number, err)
				}
			})
		}
	}
}

// TestCompatibilityCheckerCatchesBreakingChanges makes sure the check above
// has teeth: each reader here must be rejected for the writer.
func TestCompatibilityCheckerCatchesBreakingChanges(t *testing.T) {
	const writer = `{"type":"record","name":"R","fields":[
		{"name":"a","type":"string"},
		{"name":"op","type":[{"type":"record","name":"X","fields":[]},{"type":"record","name":"Y","fields":[]}]}]}`
	tests := map[string]string{
		"RequiredFieldWithoutDefault": `{"type":"record","name":"R","fields":[
			{"name":"a","type":"string"},{"name":"b","type":"string"},
			{"name":"op","type":[{"type":"record","name":"X","fields":[]},{"type":"record","name":"Y","fields":[]}]}]}`,
		"ChangedFieldType": `{"type":"record","name":"R","fields":[
			{"name":"a","type":"int"},
			{"name":"op","type":[{"type":"record","name":"X","fields":[]},{"type":"record","name":"Y","fields":[]}]}]}`,
		"RemovedUnionMember": `{"type":"record","name":"R","fields":[
			{"name":"a","type":"string"},
			{"name":"op","type":[{"type":"record","name":"X","fields":[]}]}]}`,
		"RenamedRecord": `{"type":"record","name":"S","fields":[
			{"name":"a","type":"string"},
			{"name":"op","type":[{"type":"record","name":"X","fields":[]},{"type":"record","name":"Y","fields":[]}]}]}`,
	}
	w, err := parse([]byte(writer))
	if err != nil {
		t.Fatal(err)
	}
	for name, reader := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := parse([]byte(reader))
			if err != nil {
				t.Fatal(err)
			}
			if err := avro.NewSchemaCompatibility().Compatible(r, w); err == nil {
				t.Errorf("reader accepted as compatible, want an error")
			}
		})
	}
	t.Run("AppendedMemberAndDefaultedFieldAreFine", func(t *testing.T) {
		r, err := parse([]byte(`{"type":"record","name":"R","fields":[
			{"name":"a","type":"string"},{"name":"b","type":["null","string"],"default":null},
			{"name":"op","type":[{"type":"record","name":"X","fields":[]},{"type":"record","name":"Y","fields":[]},{"type":"record","name":"Z","fields":[]}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := avro.NewSchemaCompatibility().Compatible(r, w); err != nil {
			t.Errorf("got %v, want compatible", err)
		}
	})
}

// TestHistoryDecodesEveryVersion writes a sample message with every published
// version, once per member of its operation, result or payload union (once
// for an envelope without such a union), and decodes it with the codec.
func TestHistoryDecodesEveryVersion(t *testing.T) {
	c := newTestCodec(t, Config{})
	for _, env := range Envelopes() {
		versions, err := loadHistory(files, env)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			members := []avro.Schema{v.schema} // the envelope is its own sample
			if u := recordUnion(v.schema); u != nil {
				members = u.Types()
			}
			for i, m := range members {
				member := m.(avro.NamedSchema)
				t.Run(fmt.Sprintf("%s/v%d/%s", env, v.number, member.Name()), func(t *testing.T) {
					w := avro.NewWriter(nil, 256)
					writeSample(w, v.schema, i, member.Name())
					h := header(v.fingerprint)
					got, err := decodeMember(c, env, append(h[:], w.Buffer()...))
					if err != nil {
						t.Fatal(err)
					}
					if got, want := reflect.TypeOf(got).Elem().Name(), goName(member); got != want {
						t.Errorf("decoded member type: got %s, want %s", got, want)
					}
				})
			}
		}
	}
}

// goName is the name of the Go type of the record s: the record's own name,
// except for the envelopes, which drop their Auth prefix.
func goName(s avro.NamedSchema) string {
	return strings.TrimPrefix(s.Name(), "Auth")
}

// recordUnion returns the envelope's union of records (operation, result or
// payload), or nil for an envelope without one.
func recordUnion(s avro.Schema) *avro.UnionSchema {
	for _, f := range s.(*avro.RecordSchema).Fields() {
		if u, ok := f.Type().(*avro.UnionSchema); ok && !u.Nullable() {
			return u
		}
	}
	return nil
}

// writeSample writes a value of s, choosing member branch of the envelope's
// union of records, the non-null member of nullable unions, and an enum
// symbol that fits: Status OK for a successful result, INVALID for an Error.
func writeSample(w *avro.Writer, s avro.Schema, branch int, member string) {
	switch s := s.(type) {
	case *avro.RefSchema:
		writeSample(w, s.Schema(), branch, member)
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			writeSample(w, f.Type(), branch, member)
		}
	case *avro.UnionSchema:
		i := branch
		if s.Nullable() {
			_, i = s.Indices()
		}
		w.WriteLong(int64(i))
		writeSample(w, s.Types()[i], branch, member)
	case *avro.EnumSchema:
		i := len(s.Symbols()) - 1
		if s.FullName() == "authworker.Status" {
			want := "OK"
			if member == "Error" {
				want = "INVALID"
			}
			for j, sym := range s.Symbols() {
				if sym == want {
					i = j
				}
			}
		}
		w.WriteInt(int32(i))
	case *avro.ArraySchema:
		w.WriteLong(1)
		writeSample(w, s.Items(), branch, member)
		w.WriteLong(0)
	case *avro.MapSchema:
		w.WriteLong(1)
		w.WriteString("k")
		writeSample(w, s.Values(), branch, member)
		w.WriteLong(0)
	case *avro.FixedSchema:
		_, _ = w.Write(make([]byte, s.Size()))
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
		case avro.Boolean:
			w.WriteBool(true)
		case avro.Int:
			w.WriteInt(7)
		case avro.Long:
			w.WriteLong(1700000000123)
		case avro.Float:
			w.WriteFloat(1.5)
		case avro.Double:
			w.WriteDouble(2.5)
		case avro.String, avro.Bytes:
			w.WriteString(strings.ToLower(member))
		}
	}
}

// decodeEnvelope decodes data as env: a *Request, *Response, *Event or
// *Notification.
func decodeEnvelope(c *Codec, env Envelope, data []byte) (any, error) {
	ctx := context.Background()
	switch env {
	case EnvelopeRequest:
		return c.DecodeRequest(ctx, data)
	case EnvelopeResponse:
		return c.DecodeResponse(ctx, data)
	case EnvelopeEvent:
		return c.DecodeEvent(ctx, data)
	case EnvelopeNotification:
		return c.DecodeNotification(ctx, data)
	default:
		return nil, fmt.Errorf("envelope %s", env)
	}
}

// decodeMember decodes data as env and returns its union member, or the
// decoded envelope when it has no union.
func decodeMember(c *Codec, env Envelope, data []byte) (any, error) {
	v, err := decodeEnvelope(c, env, data)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case *Request:
		return v.Operation, nil
	case *Response:
		return v.Result, nil
	case *Event:
		return v.Payload, nil
	default:
		return v, nil
	}
}

func TestHistoryExported(t *testing.T) {
	for _, env := range Envelopes() {
		t.Run(env.String(), func(t *testing.T) {
			h, err := History(env)
			if err != nil {
				t.Fatal(err)
			}
			current, err := Parse(env)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := Fingerprint(h[len(h)-1]), Fingerprint(current); got != want {
				t.Errorf("fingerprint of the newest version: got %x, want the current %x", got, want)
			}
		})
	}
}
