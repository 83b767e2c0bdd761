package schemas

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hamba/avro/v2"
)

// Records for hand-made response histories.
const (
	errorWithoutRetry = `{"type":"record","name":"Error","fields":[
		{"name":"message","type":"string"},
		{"name":"field","type":["null","string"],"default":null}]}`
	errorWithRetry = `{"type":"record","name":"Error","fields":[
		{"name":"message","type":"string"},
		{"name":"field","type":["null","string"],"default":null},
		{"name":"retryAfterMs","type":["null","long"],"default":null}]}`
	registerResultRecord = `{"type":"record","name":"RegisterResult","fields":[{"name":"userId","type":"string"}]}`
	loginResultRecord    = `{"type":"record","name":"LoginResult","fields":[
		{"name":"userId","type":"string"},
		{"name":"sessionId","type":"string"},
		{"name":"accessToken","type":"string"},
		{"name":"accessTokenExpiresAt","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"refreshToken","type":"string"},
		{"name":"refreshTokenExpiresAt","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
)

var allStatuses = []string{"UNKNOWN", "OK", "INVALID", "UNAUTHORIZED", "CONFLICT", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"}

// responseSchema is an AuthResponse with the given Status symbols and result
// records.
func responseSchema(statuses []string, results ...string) string {
	return `{"type":"record","name":"AuthResponse","namespace":"authworker","fields":[
		{"name":"requestId","type":"string"},
		{"name":"status","type":{"type":"enum","name":"Status","symbols":["` + strings.Join(statuses, `","`) + `"],"default":"UNKNOWN"}},
		{"name":"result","type":[` + strings.Join(results, ",") + `]}]}`
}

// frozen returns history/<env>/v<n>.avsc as embedded, with each of edits
// (old, new pairs) applied once.
func frozen(tb testing.TB, env Envelope, n int, edits ...string) string {
	tb.Helper()
	b, err := files.ReadFile(fmt.Sprintf("history/%s/v%d.avsc", env, n))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			tb.Fatalf("history/%s/v%d.avsc has no %q", env, n, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return s
}

// codecWithHistory builds a codec from the embedded schemas, except that
// env's history is versions (v1 first) and its current schema the last of
// them.
func codecWithHistory(tb testing.TB, env Envelope, versions []string) *Codec {
	tb.Helper()
	fsys := fstest.MapFS{}
	for _, e := range Envelopes() {
		src, err := Source(e)
		if err != nil {
			tb.Fatal(err)
		}
		fsys[e.String()+".avsc"] = &fstest.MapFile{Data: src}
		fsys["history/"+e.String()+"/v1.avsc"] = &fstest.MapFile{Data: src}
	}
	for i, v := range versions {
		fsys[fmt.Sprintf("history/%s/v%d.avsc", env, i+1)] = &fstest.MapFile{Data: []byte(v)}
	}
	fsys[env.String()+".avsc"] = &fstest.MapFile{Data: []byte(versions[len(versions)-1])}
	c, err := newCodec(Config{}, fsys)
	if err != nil {
		tb.Fatalf("newCodec: %v", err)
	}
	return c
}

// encodeEnvelope encodes a *Request, *Response, *Event or *Notification.
func encodeEnvelope(c *Codec, msg any) (Envelope, []byte, error) {
	switch m := msg.(type) {
	case *Request:
		b, err := c.EncodeRequest(m)
		return EnvelopeRequest, b, err
	case *Response:
		b, err := c.EncodeResponse(m)
		return EnvelopeResponse, b, err
	case *Event:
		b, err := c.EncodeEvent(m)
		return EnvelopeEvent, b, err
	case *Notification:
		b, err := c.EncodeNotification(m)
		return EnvelopeNotification, b, err
	default:
		return 0, nil, fmt.Errorf("no envelope for %T", msg)
	}
}

// versionClient reads like a client built against one published version
// of an envelope, such as Java's BinaryMessageDecoder built from that
// schema, with addSchema for each older version it was told of: it finds
// the writer schema by fingerprint among those it knows and resolves it
// against its own reader schema with Avro's rules. It uses hamba's generic
// decoding, with no Go types registered.
type versionClient struct {
	reader avro.Schema
	known  map[uint64]avro.Schema
}

// newVersionClient returns a client that reads with the last of srcs and
// knows each of srcs as a writer schema.
func newVersionClient(tb testing.TB, srcs ...string) *versionClient {
	tb.Helper()
	c := &versionClient{known: map[uint64]avro.Schema{}}
	for _, src := range srcs {
		s, err := parse([]byte(src))
		if err != nil {
			tb.Fatal(err)
		}
		c.reader, c.known[Fingerprint(s)] = s, s
	}
	return c
}

// decode returns the message as hamba's generic decoder reads it. It fails
// for a fingerprint the client does not know, a body that does not decode,
// and a body that holds more or other bytes than the writer schema's
// encoding of what was read.
func (c *versionClient) decode(data []byte) (map[string]any, error) {
	if len(data) < HeaderSize || data[0] != soeMagic0 || data[1] != soeMagic1 {
		return nil, fmt.Errorf("not single-object encoded")
	}
	h := [HeaderSize]byte(data[:HeaderSize])
	var writer avro.Schema
	for fp, s := range c.known {
		if header(fp) == h {
			writer = s
		}
	}
	if writer == nil {
		return nil, fmt.Errorf("unknown writer fingerprint % x", h[2:])
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(c.reader, writer)
	if err != nil {
		return nil, err
	}
	var v any
	if err := avro.Unmarshal(resolved, data[HeaderSize:], &v); err != nil {
		return nil, err
	}
	again, err := avro.Marshal(writer, v)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data[HeaderSize:]) {
		return nil, fmt.Errorf("body %x is not the writer's encoding %x of what was read", data[HeaderSize:], again)
	}
	return v.(map[string]any), nil
}

// TestWriterIsTheOldestVersionThatCarriesTheMessage gives the codec
// hand-made histories and checks each message is written with the oldest
// version that carries it: same envelope fields, its union record unchanged
// since, its enum symbol known. The header names that version, and a client
// that knows only that version reads the body.
func TestWriterIsTheOldestVersionThatCarriesTheMessage(t *testing.T) {
	withoutLateStatuses := allStatuses[:len(allStatuses)-2] // no DEADLINE_EXCEEDED, INTERNAL
	type message struct {
		name string
		msg  any
		want int // the history version it must be written with
	}
	tests := []struct {
		name     string
		env      Envelope
		versions []string
		messages []message
	}{
		{
			name: "RecordGainedFieldInV3",
			env:  EnvelopeResponse,
			versions: []string{
				responseSchema(allStatuses, errorWithoutRetry, registerResultRecord),
				responseSchema(allStatuses, errorWithoutRetry, registerResultRecord, loginResultRecord),
				responseSchema(allStatuses, errorWithRetry, registerResultRecord, loginResultRecord),
			},
			messages: []message{
				{"RegisterResult", &Response{RequestID: "r", Status: StatusOK, Result: &RegisterResult{UserID: "u"}}, 1},
				{"LoginResultAppendedInV2", &Response{RequestID: "r", Status: StatusOK, Result: &LoginResult{UserID: "u", AccessTokenExpiresAt: ms(1)}}, 2},
				{"Error", &Response{RequestID: "r", Status: StatusInvalid, Result: &Error{Message: "m", Field: ptr("email")}}, 3},
				{"ErrorWithRetry", &Response{RequestID: "r", Status: StatusRateLimited, Result: &Error{Message: "m", RetryAfterMs: ptr(int64(5))}}, 3},
			},
		},
		{
			name: "StatusSymbolsAppendedInV2",
			env:  EnvelopeResponse,
			versions: []string{
				responseSchema(withoutLateStatuses, errorWithRetry, registerResultRecord, loginResultRecord),
				responseSchema(allStatuses, errorWithRetry, registerResultRecord, loginResultRecord),
			},
			messages: []message{
				{"OK", &Response{RequestID: "r", Status: StatusOK, Result: &LoginResult{UserID: "u"}}, 1},
				{"Unauthorized", &Response{RequestID: "r", Status: StatusUnauthorized, Result: &Error{Message: "m"}}, 1},
				{"DeadlineExceeded", &Response{RequestID: "r", Status: StatusDeadlineExceeded, Result: &Error{Message: "m"}}, 2},
				{"Internal", &Response{RequestID: "r", Status: StatusInternal, Result: &Error{Message: "m"}}, 2},
			},
		},
		{
			name: "MembersReorderedInV1",
			env:  EnvelopeResponse,
			versions: []string{
				responseSchema(allStatuses, registerResultRecord, errorWithRetry, loginResultRecord),
				responseSchema(allStatuses, errorWithRetry, registerResultRecord, loginResultRecord),
			},
			messages: []message{
				{"RegisterResult", &Response{RequestID: "r", Status: StatusOK, Result: &RegisterResult{UserID: "u"}}, 2},
				{"Error", &Response{RequestID: "r", Status: StatusInvalid, Result: &Error{Message: "m"}}, 2},
			},
		},
		{
			name:     "EnvelopeFieldDroppedInV2",
			env:      EnvelopeRequest,
			versions: []string{olderRequestSchema, frozen(t, EnvelopeRequest, 1)},
			messages: []message{
				{"Login", &Request{RequestID: "r", Client: ClientMetadata{ClientID: "c"}, Operation: &Login{Email: "e", Password: "p"}}, 2},
				{"Register", &Request{RequestID: "r", Operation: &Register{Email: "e", Password: "p"}}, 2},
			},
		},
		{
			name: "MemberEnumGainedSymbolInV2",
			env:  EnvelopeEvent,
			versions: []string{
				frozen(t, EnvelopeEvent, 1, `, "DISABLED"]`, `]`),
				frozen(t, EnvelopeEvent, 1),
			},
			messages: []message{
				{"UserRegistered", &Event{EventID: "e", Payload: &UserRegistered{Email: "e"}}, 1},
				{"LoginFailedOldSymbol", &Event{EventID: "e", Payload: &LoginFailed{Reason: LoginFailureLocked}}, 2},
				{"LoginFailedNewSymbol", &Event{EventID: "e", Payload: &LoginFailed{Reason: LoginFailureDisabled}}, 2},
			},
		},
		{
			name: "NotificationKindAppendedInV2",
			env:  EnvelopeNotification,
			versions: []string{
				frozen(t, EnvelopeNotification, 1, `, "PASSWORD_CHANGED"]`, `]`),
				frozen(t, EnvelopeNotification, 1),
			},
			messages: []message{
				{"PasswordReset", &Notification{NotificationID: "n", Kind: NotificationPasswordReset, Code: ptr("1")}, 1},
				{"PasswordChanged", &Notification{NotificationID: "n", Kind: NotificationPasswordChanged}, 2},
			},
		},
	}
	for _, tt := range tests {
		c := codecWithHistory(t, tt.env, tt.versions)
		for _, m := range tt.messages {
			t.Run(tt.name+"/"+m.name, func(t *testing.T) {
				env, b, err := encodeEnvelope(c, m.msg)
				if err != nil {
					t.Fatal(err)
				}
				s, err := parse([]byte(tt.versions[m.want-1]))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := [HeaderSize]byte(b[:HeaderSize]), Header(s); got != want {
					t.Errorf("header: got % x, want v%d's % x", got, m.want, want)
				}
				if _, err := newVersionClient(t, tt.versions[m.want-1]).decode(b); err != nil {
					t.Errorf("a client of v%d only: %v", m.want, err)
				}
				got, err := decodeEnvelope(c, env, b)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, m.msg) {
					t.Errorf("round trip: got %+v, want %+v", got, m.msg)
				}
			})
		}
	}
}

// carriedMessages returns a message of every record of env's union that
// published version v has with today's definition (with every status of v
// that fits it, for a response) or, for an envelope without a union, of
// every symbol of v's enum: the messages the codec writes with v or an
// older version. A record changed since v, say one whose enum gained a
// symbol, is left out: the codec writes it with the version that changed
// it.
func carriedMessages(tb testing.TB, env Envelope, v avro.Schema) map[string]any {
	tb.Helper()
	current, err := Parse(env)
	if err != nil {
		tb.Fatal(err)
	}
	msgs := map[string]any{}
	if env == EnvelopeNotification {
		for _, sym := range findEnum(v, "authworker.NotificationKind").Symbols() {
			msgs[sym] = &Notification{NotificationID: "n-" + sym, UserID: "u", Email: "e", Kind: NotificationKind(sym), OccurredAt: ms(1)}
		}
		return msgs
	}
	today := map[string]string{}
	for _, t := range recordUnion(current).Types() {
		today[t.(avro.NamedSchema).FullName()] = standaloneCanonicalForm(t)
	}
	for _, t := range recordUnion(v).Types() {
		name := t.(avro.NamedSchema).FullName()
		if standaloneCanonicalForm(t) != today[name] {
			continue
		}
		id := "r-" + name
		record := sampleRecord(tb, name)
		switch env {
		case EnvelopeRequest:
			msgs[name] = &Request{RequestID: id, Client: ClientMetadata{ClientID: "c"}, Operation: record.(Operation)}
		case EnvelopeEvent:
			msgs[name] = &Event{EventID: id, Payload: record.(Payload)}
		case EnvelopeResponse:
			for _, sym := range findEnum(v, "authworker.Status").Symbols() {
				status := Status(sym)
				res := sampleRecord(tb, name).(Result)
				if _, isError := res.(*Error); isError != (status != StatusOK) {
					continue
				}
				msgs[name+"/"+sym] = &Response{RequestID: id + "/" + sym, Status: status, Result: res}
			}
		}
	}
	return msgs
}

// sampleRecord returns a new union record named name (a *Login, ...) that
// the codec accepts: empty but for its enum fields, which hold a symbol.
func sampleRecord(tb testing.TB, name string) any {
	tb.Helper()
	for _, m := range unionMembers() {
		if m.name != name {
			continue
		}
		p := reflect.New(reflect.TypeOf(m.record)).Interface()
		switch r := p.(type) {
		case *LoginFailed:
			r.Reason = LoginFailureBadCredentials
		case *AccountLocked:
			r.Scope = LockScopeUnfamiliarSources
		case *SessionRevoked:
			r.Reason = RevocationLogout
		}
		return p
	}
	tb.Fatalf("no union record %s", name)
	return nil
}

// TestClientsReadEveryMessageTheirVersionCarries: a client built against
// version N of an envelope, whose decoder knows v1 to vN as doc.go asks,
// reads every message whose record (and status or kind) vN has as it is
// today, however much the schema grew since: the codec writes those with
// vN or an older version. The client of v1, such as a Spring service that
// never upgraded, knows nothing but v1.
func TestClientsReadEveryMessageTheirVersionCarries(t *testing.T) {
	c := newTestCodec(t, Config{})
	for _, env := range Envelopes() {
		h, err := History(env)
		if err != nil {
			t.Fatal(err)
		}
		var known []string
		for n := range h {
			known = append(known, frozen(t, env, n+1))
			client := newVersionClient(t, known...)
			for name, msg := range carriedMessages(t, env, h[n]) {
				t.Run(fmt.Sprintf("%s/v%d/%s", env, n+1, name), func(t *testing.T) {
					_, b, err := encodeEnvelope(c, msg)
					if err != nil {
						t.Fatal(err)
					}
					got, err := client.decode(b)
					if err != nil {
						t.Fatalf("v%d client: %v", n+1, err)
					}
					checkGeneric(t, got, msg)
				})
			}
		}
	}
}

// checkGeneric compares what a generic decoder read with the message sent:
// its id, its union record and its status or kind.
func checkGeneric(tb testing.TB, got map[string]any, msg any) {
	tb.Helper()
	var id, idField, union, enum, enumField string
	switch m := msg.(type) {
	case *Request:
		id, idField, union = m.RequestID, "requestId", "operation"
	case *Response:
		id, idField, union, enum, enumField = m.RequestID, "requestId", "result", string(m.Status), "status"
	case *Event:
		id, idField, union = m.EventID, "eventId", "payload"
	case *Notification:
		id, idField, enum, enumField = m.NotificationID, "notificationId", string(m.Kind), "kind"
	}
	if got[idField] != id {
		tb.Errorf("%s: got %v, want %q", idField, got[idField], id)
	}
	if enumField != "" && got[enumField] != enum {
		tb.Errorf("%s: got %v, want %s", enumField, got[enumField], enum)
	}
	if union != "" {
		member, _ := got[union].(map[string]any)
		want := "authworker." + reflect.TypeOf(reflect.ValueOf(msg).Elem().FieldByName(fieldOfUnion(union)).Interface()).Elem().Name()
		if _, ok := member[want]; !ok || len(member) != 1 {
			tb.Errorf("%s: got %v, want a %s", union, got[union], want)
		}
	}
}

// fieldOfUnion names the Go field of the union field named union.
func fieldOfUnion(union string) string {
	return map[string]string{"operation": "Operation", "result": "Result", "payload": "Payload"}[union]
}

// TestV1ClientsCannotReadNewerVersions makes sure the test above has teeth:
// a v1-only client refuses a message written with another schema.
func TestV1ClientsCannotReadNewerVersions(t *testing.T) {
	client := newVersionClient(t, frozen(t, EnvelopeResponse, 1))
	other, err := parse([]byte(responseSchema(allStatuses, errorWithRetry, registerResultRecord, loginResultRecord, `{"type":"record","name":"Later","fields":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	h := Header(other)
	body := wireBody(t, EnvelopeResponse, &wireResponse{RequestID: "r", Status: StatusOK, Result: &RegisterResult{}})
	if _, err := client.decode(append(h[:], body...)); err == nil {
		t.Error("a v1-only client read a message with another fingerprint")
	}
	v1 := header(Fingerprint(client.reader))
	if _, err := client.decode(append(v1[:], append(bytes.Clone(body), 0)...)); err == nil {
		t.Error("a v1-only client read a body with a trailing byte")
	}
}

// TestWriterChoiceNeedsNoContext: the choice does not depend on anything
// but the message, so equal messages get equal bytes whatever was encoded
// before (as idempotent replay needs).
func TestWriterChoiceNeedsNoContext(t *testing.T) {
	c := newTestCodec(t, Config{})
	msg := &Response{RequestID: "r", Status: StatusOK, Result: &RegisterResult{UserID: "u"}}
	first, err := c.EncodeResponse(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*Response{
		{RequestID: "x", Status: StatusInternal, Result: &Error{Message: "m"}},
		{RequestID: "y", Status: StatusOK, Result: &LoginResult{}},
	} {
		if _, err := c.EncodeResponse(other); err != nil {
			t.Fatal(err)
		}
	}
	again, err := c.EncodeResponse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("got %x, then %x", first, again)
	}
	if _, err := c.DecodeResponse(context.Background(), again); err != nil {
		t.Fatal(err)
	}
}

func TestStandaloneCanonicalForm(t *testing.T) {
	const src = `{"type":"record","name":"R","fields":[
		{"name":"u","type":[
			{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]},
			{"type":"record","name":"B","fields":[{"name":"a","type":"A"},{"name":"again","type":"A"}]}]}]}`
	s, err := parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b := fieldType(s, "u").(*avro.UnionSchema).Types()[1]
	if got, want := standaloneCanonicalForm(b), `{"name":"B","type":"record","fields":[{"name":"a","type":{"name":"A","type":"record","fields":[{"name":"x","type":"int"}]}},{"name":"again","type":"A"}]}`; got != want {
		t.Errorf("B standing alone:\ngot  %s\nwant %s", got, want)
	}
	if got, want := CanonicalForm(b), `{"name":"B","type":"record","fields":[{"name":"a","type":"A"},{"name":"again","type":"A"}]}`; got != want {
		t.Errorf("B in R:\ngot  %s\nwant %s", got, want)
	}
	t.Run("TopLevelIsTheCanonicalForm", func(t *testing.T) {
		for _, env := range Envelopes() {
			h, err := History(env)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range h {
				if got, want := standaloneCanonicalForm(v), CanonicalForm(v); got != want {
					t.Errorf("%s v%d:\ngot  %s\nwant %s", env, i+1, got, want)
				}
			}
		}
	})
}

// TestCarries checks, schema by schema, what an older version can write of
// messages of the current one.
func TestCarries(t *testing.T) {
	const current = `{"type":"record","name":"R","fields":[
		{"name":"id","type":"string"},
		{"name":"client","type":{"type":"record","name":"C","fields":[{"name":"x","type":"int"}]}},
		{"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B","C"]}},
		{"name":"op","type":[
			{"type":"record","name":"X","fields":[{"name":"s","type":"string"}]},
			{"type":"record","name":"Y","fields":[{"name":"c","type":"C"}]},
			{"type":"record","name":"Z","fields":[]}]}]}`
	// schema is current with each (old, new) pair of edits applied.
	schema := func(edits ...string) string {
		s := current
		for i := 0; i+1 < len(edits); i += 2 {
			if !strings.Contains(s, edits[i]) {
				t.Fatalf("no %q to edit", edits[i])
			}
			s = strings.Replace(s, edits[i], edits[i+1], 1)
		}
		return s
	}
	const lastMember = `,
			{"type":"record","name":"Z","fields":[]}`
	tests := []struct {
		name    string
		old     string
		ok      bool
		members []string
		symbols []string
	}{
		{"Same", current, true, []string{"X", "Y", "Z"}, []string{"A", "B", "C"}},
		{"MemberAppended", schema(lastMember, ""), true, []string{"X", "Y"}, []string{"A", "B", "C"}},
		{"SymbolAppended", schema(`"B","C"`, `"B"`), true, []string{"X", "Y", "Z"}, []string{"A", "B"}},
		{"MemberGainedField", schema(`"name":"X","fields":[{"name":"s","type":"string"}]`, `"name":"X","fields":[]`), true, []string{"Y", "Z"}, []string{"A", "B", "C"}},
		{"MemberLostField", schema(`"name":"Z","fields":[]`, `"name":"Z","fields":[{"name":"t","type":"long","default":0}]`), true, []string{"X", "Y"}, []string{"A", "B", "C"}},
		{"MemberFieldOfOtherType", schema(`{"name":"s","type":"string"}`, `{"name":"s","type":"bytes"}`), true, []string{"Y", "Z"}, []string{"A", "B", "C"}},
		{"FieldRenamed", schema(`"id"`, `"key"`), false, nil, nil},
		{"FieldAdded", schema(`{"name":"id","type":"string"},`, `{"name":"id","type":"string"},{"name":"legacy","type":"boolean","default":false},`), false, nil, nil},
		{"OtherFieldChanged", schema(`{"name":"id","type":"string"}`, `{"name":"id","type":["null","string"]}`), false, nil, nil},
		{"RecordRenamed", schema(`"name":"R"`, `"name":"S"`), false, nil, nil},
		{"MembersReordered", schema(`{"type":"record","name":"X","fields":[{"name":"s","type":"string"}]},
			{"type":"record","name":"Y","fields":[{"name":"c","type":"C"}]}`, `{"type":"record","name":"Y","fields":[{"name":"c","type":"C"}]},
			{"type":"record","name":"X","fields":[{"name":"s","type":"string"}]}`), false, nil, nil},
		{"SymbolsReordered", schema(`"A","B","C"`, `"B","A","C"`), false, nil, nil},
		{"SymbolRemovedSinceThen", schema(`"A","B","C"`, `"A","B","C","D"`), false, nil, nil},
		{"MemberRemovedSinceThen", schema(lastMember, lastMember+`,{"type":"record","name":"W","fields":[]}`), false, nil, nil},
		{"UnionWasAString", `{"type":"record","name":"R","fields":[
			{"name":"id","type":"string"},
			{"name":"client","type":{"type":"record","name":"C","fields":[{"name":"x","type":"int"}]}},
			{"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B","C"]}},
			{"name":"op","type":"string"}]}`, false, nil, nil},
		{"EnumWasAString", schema(`{"type":"enum","name":"K","symbols":["A","B","C"]}`, `"string"`), false, nil, nil},
	}
	cur, err := parse([]byte(current))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, err := parse([]byte(tt.old))
			if err != nil {
				t.Fatal(err)
			}
			c, ok := carries(cur, old, "op", "kind")
			if ok != tt.ok {
				t.Fatalf("ok: got %v, want %v", ok, tt.ok)
			}
			if got := trueKeys(c.members); !slices.Equal(got, tt.members) {
				t.Errorf("members: got %q, want %q", got, tt.members)
			}
			if got := trueKeys(c.symbols); !slices.Equal(got, tt.symbols) {
				t.Errorf("symbols: got %q, want %q", got, tt.symbols)
			}
		})
	}
	t.Run("RecordDefinedInAnotherMemberChanged", func(t *testing.T) {
		// Q names T, which P defines: Q's own text is the same in both
		// versions, but its bytes follow T's definition.
		const union = `{"type":"record","name":"R","fields":[{"name":"op","type":[
			{"type":"record","name":"P","fields":[{"name":"t","type":{"type":"record","name":"T","fields":[%s]}}]},
			{"type":"record","name":"Q","fields":[{"name":"t","type":"T"}]},
			{"type":"record","name":"S","fields":[]}]}]}`
		cur, err := parse([]byte(fmt.Sprintf(union, `{"name":"x","type":"int"},{"name":"y","type":"int"}`)))
		if err != nil {
			t.Fatal(err)
		}
		old, err := parse([]byte(fmt.Sprintf(union, `{"name":"x","type":"int"}`)))
		if err != nil {
			t.Fatal(err)
		}
		c, ok := carries(cur, old, "op", "")
		if !ok {
			t.Fatal("ok: got false, want true")
		}
		if got, want := trueKeys(c.members), []string{"S"}; !slices.Equal(got, want) {
			t.Errorf("members: got %q, want %q", got, want)
		}
		if got, want := trueKeys(c.symbols), []string{""}; !slices.Equal(got, want) {
			t.Errorf("symbols: got %q, want %q", got, want)
		}
	})
}

// trueKeys returns the keys of m whose value is true, sorted.
func trueKeys(m map[string]bool) []string {
	var keys []string
	for k, v := range m {
		if v {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// TestEveryRecordAndSymbolHasAPublishedWriter: the embedded history carries
// every message of the current schemas, so the codec never falls back to
// writing with an unpublished schema, and encoding is one map lookup.
func TestEveryRecordAndSymbolHasAPublishedWriter(t *testing.T) {
	c := newTestCodec(t, Config{})
	for _, ec := range []*envelopeCodec{&c.request, &c.response, &c.event, &c.notification} {
		t.Run(ec.env.String(), func(t *testing.T) {
			union, enum := ec.env.variants()
			members, err := variantNames(ec.reader, union)
			if err != nil {
				t.Fatal(err)
			}
			symbols, err := variantSymbols(ec.reader, enum)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(ec.writers), len(members)*len(symbols); got != want {
				t.Errorf("%d writers, want one per record and symbol: %d", got, want)
			}
			for _, m := range members {
				for _, s := range symbols {
					w, ok := ec.writers[writerKey{member: m, symbol: s}]
					if !ok || w.version < 1 {
						t.Errorf("%q %q: no published version writes it", m, s)
					}
				}
			}
		})
	}
}

// TestWriterVersionsOfTheEmbeddedHistory pins the version each message is
// written with: what v1 carries keeps v1's header (and so its exact bytes,
// which TestJavaEncodingsRoundTrip compares with Java's), what v1 lacks
// gets the header of the first version that has it, and a record changed
// since v1 (LoginFailed, whose enum gained symbols) that of the version
// that changed it.
func TestWriterVersionsOfTheEmbeddedHistory(t *testing.T) {
	type writerCase struct {
		name string
		msg  any
		want int // the history version it must be written with
	}
	tests := []writerCase{
		{"Login", &Request{RequestID: "r", Client: ClientMetadata{ClientID: "web"}, Operation: &Login{Email: "e", Password: "p"}}, 1},
		{"Register", &Request{RequestID: "r", Operation: &Register{Email: "e", Password: "p"}}, 1},
		{"Refresh", &Request{RequestID: "r", Operation: &Refresh{RefreshToken: "rt"}}, 2},
		{"Logout", &Request{RequestID: "r", Operation: &Logout{}}, 2},
		{"DeleteUser", &Request{RequestID: "r", Operation: &DeleteUser{UserID: "u"}}, 2},
		{"LoginResult", &Response{RequestID: "r", Status: StatusOK, Result: &LoginResult{UserID: "u"}}, 1},
		{"Error", &Response{RequestID: "r", Status: StatusInternal, Result: &Error{Message: "m"}}, 1},
		{"Done", &Response{RequestID: "r", Status: StatusOK, Result: &Done{}}, 2},
		{"IntrospectResult", &Response{RequestID: "r", Status: StatusOK, Result: &IntrospectResult{}}, 2},
		{"UserRegistered", &Event{EventID: "e", Payload: &UserRegistered{Email: "e"}}, 1},
		{"LoginSucceeded", &Event{EventID: "e", Payload: &LoginSucceeded{SessionID: "s"}}, 1},
		// v2 appended symbols to LoginFailed's reason: the record changed,
		// so v2 writes it, whatever its symbol.
		{"LoginFailedV1Symbol", &Event{EventID: "e", Payload: &LoginFailed{Reason: LoginFailureBadCredentials}}, 2},
		{"LoginFailedV2Symbol", &Event{EventID: "e", Payload: &LoginFailed{Reason: LoginFailureUnknownAccount}}, 2},
		{"PasswordResetNotification", &Notification{NotificationID: "n", Kind: NotificationPasswordReset}, 1},
	}
	events, err := History(EnvelopeEvent)
	if err != nil {
		t.Fatal(err)
	}
	// Each event record v1 lacks is written with the first version that
	// has it.
	first := map[string]int{}
	for i, v := range slices.Backward(events) {
		for _, m := range recordUnion(v).Types() {
			first[m.(avro.NamedSchema).FullName()] = i + 1
		}
	}
	for _, m := range payloadMembers {
		if first[m.name] > 1 {
			tests = append(tests, writerCase{m.name, &Event{EventID: "e", Payload: sampleRecord(t, m.name).(Payload)}, first[m.name]})
		}
	}
	c := newTestCodec(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, b, err := encodeEnvelope(c, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			h, err := History(env)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := [HeaderSize]byte(b[:HeaderSize]), Header(h[tt.want-1]); got != want {
				t.Errorf("header: got % x, want v%d's % x", got, tt.want, want)
			}
		})
	}
}
