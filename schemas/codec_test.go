package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"
)

func ptr[T any](v T) *T { return &v }

func newTestCodec(tb testing.TB, cfg Config) *Codec {
	tb.Helper()
	c, err := NewCodec(cfg)
	if err != nil {
		tb.Fatalf("NewCodec: %v", err)
	}
	return c
}

// ms returns a UTC time with millisecond precision, as timestamp-millis
// decodes.
func ms(unixMilli int64) time.Time { return time.UnixMilli(unixMilli).UTC() }

func TestRequestRoundTrip(t *testing.T) {
	c := newTestCodec(t, Config{})
	tests := map[string]*Request{
		"Register": {
			RequestID: "r-1",
			Client:    ClientMetadata{ClientID: "web"},
			Operation: &Register{Email: "ada@example.com", Password: "pw"},
		},
		"Login": {
			RequestID: "r-2",
			Client:    ClientMetadata{ClientID: "web", IP: ptr("2001:db8::1"), UserAgent: ptr("curl/8")},
			Operation: &Login{Email: "ada@example.com", Password: "pw"},
		},
		"LoginWithDeadline": {
			RequestID: "r-3",
			Deadline:  ptr(ms(1700000000123)),
			Client:    ClientMetadata{ClientID: "mobile", UserAgent: ptr("")},
			Operation: &Login{Email: "", Password: ""},
		},
		"DeadlineBeforeEpoch": {
			RequestID: "r-4",
			Deadline:  ptr(ms(-1)),
			Operation: &Register{Email: "ünïcødé@example.com", Password: strings.Repeat("p", 5000)},
		},
		"Refresh":                  {RequestID: "r-5", Operation: &Refresh{RefreshToken: "rt"}},
		"LogoutByRefreshToken":     {RequestID: "r-6", Operation: &Logout{RefreshToken: ptr("rt")}},
		"LogoutByAccessToken":      {RequestID: "r-7", Operation: &Logout{AccessToken: ptr("a.b.c")}},
		"LogoutNamingNoToken":      {RequestID: "r-8", Operation: &Logout{}},
		"LogoutAll":                {RequestID: "r-9", Operation: &LogoutAll{AccessToken: "a.b.c"}},
		"Introspect":               {RequestID: "r-10", Operation: &Introspect{Token: "a.b.c", TokenTypeHint: ptr("access_token")}},
		"IntrospectWithoutHint":    {RequestID: "r-11", Operation: &Introspect{Token: "rt"}},
		"ChangePassword":           {RequestID: "r-12", Operation: &ChangePassword{AccessToken: "a.b.c", CurrentPassword: "old", NewPassword: "new"}},
		"RequestPasswordReset":     {RequestID: "r-13", Operation: &RequestPasswordReset{Email: "ada@example.com"}},
		"ResetPassword":            {RequestID: "r-14", Operation: &ResetPassword{Email: "ada@example.com", Code: "493817", NewPassword: "new"}},
		"RequestEmailVerification": {RequestID: "r-15", Operation: &RequestEmailVerification{Email: "ada@example.com"}},
		"VerifyEmail":              {RequestID: "r-16", Operation: &VerifyEmail{Email: "ada@example.com", Code: "493817"}},
		"DisableUser":              {RequestID: "r-17", Client: ClientMetadata{ClientID: "admin"}, Operation: &DisableUser{UserID: "u-1"}},
		"EnableUser":               {RequestID: "r-18", Client: ClientMetadata{ClientID: "admin"}, Operation: &EnableUser{UserID: "u-1"}},
		"UnlockUser":               {RequestID: "r-19", Client: ClientMetadata{ClientID: "admin"}, Operation: &UnlockUser{UserID: "u-1"}},
		"DeleteUser":               {RequestID: "r-20", Client: ClientMetadata{ClientID: "admin"}, Operation: &DeleteUser{UserID: "u-1"}},
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := c.EncodeRequest(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.DecodeRequest(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if got, want := reflect.TypeOf(got.Operation), reflect.TypeOf(want.Operation); got != want {
				t.Errorf("operation type: got %v, want %v", got, want)
			}
		})
	}
}

func TestDeadlineTruncatesToMillisecondsUTC(t *testing.T) {
	c := newTestCodec(t, Config{})
	loc := time.FixedZone("X", 3600)
	in := time.Date(2030, 1, 2, 3, 4, 5, 678901234, loc)
	b, err := c.EncodeRequest(&Request{Deadline: &in, Operation: &Login{}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DecodeRequest(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if want := in.Truncate(time.Millisecond).UTC(); !got.Deadline.Equal(want) || got.Deadline.Location() != time.UTC {
		t.Errorf("got %v, want %v", got.Deadline, want)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	c := newTestCodec(t, Config{})
	tests := map[string]*Response{
		"Error": {
			RequestID: "r-1",
			Status:    StatusUnauthorized,
			Result:    &Error{Message: "invalid credentials"},
		},
		"ErrorWithFieldAndRetry": {
			RequestID: "r-2",
			Status:    StatusRateLimited,
			Result:    &Error{Message: "slow down", Field: ptr("email"), RetryAfterMs: ptr(int64(1500))},
		},
		"UnknownStatus": {
			RequestID: "r-3",
			Status:    StatusUnknown,
			Result:    &Error{Message: "?"},
		},
		"RegisterResult": {
			RequestID: "r-4",
			Status:    StatusOK,
			Result:    &RegisterResult{UserID: "u-1"},
		},
		"LoginResult": {
			RequestID: "r-5",
			Status:    StatusOK,
			Result: &LoginResult{
				UserID: "u-1", SessionID: "s-1",
				AccessToken: "a.b.c", AccessTokenExpiresAt: ms(1700000900000),
				RefreshToken: "rt", RefreshTokenExpiresAt: ms(1702592000000),
			},
		},
	}
	tests["Done"] = &Response{RequestID: "r-6", Status: StatusOK, Result: &Done{}}
	tests["IntrospectActive"] = &Response{RequestID: "r-7", Status: StatusOK, Result: &IntrospectResult{
		Active: true, TokenType: ptr("access_token"), Sub: ptr("u-1"), Sid: ptr("s-1"), ClientID: ptr("web"),
		Iss: ptr("https://auth.example.com"), Aud: []string{"api", "billing"},
		Exp: ptr(ms(1700000900000)), Iat: ptr(ms(1700000000000)), Jti: ptr("j-1"), EmailVerified: ptr(false),
	}}
	tests["IntrospectActiveEmptyAudience"] = &Response{RequestID: "r-8", Status: StatusOK, Result: &IntrospectResult{Active: true, Aud: []string{}}}
	tests["IntrospectInactive"] = &Response{RequestID: "r-9", Status: StatusOK, Result: &IntrospectResult{}}
	for _, s := range []Status{StatusInvalid, StatusConflict, StatusNotFound, StatusUnavailable, StatusDeadlineExceeded, StatusInternal} {
		tests["Status"+s.String()] = &Response{RequestID: "r", Status: s, Result: &Error{Message: string(s.Code())}}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := c.EncodeResponse(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.DecodeResponse(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestDoneRoundTrips: Done is a record with no fields, smaller than a
// pointer, which hamba would decode over the runtime's shared zero-size
// object if the codec decoded union records into pointer types (see
// registerUnionTypes). Many Done replies, decoded between collections and
// next to other results, must come back as *Done and leave memory intact.
func TestDoneRoundTrips(t *testing.T) {
	c := newTestCodec(t, Config{})
	done, err := c.EncodeResponse(&Response{RequestID: "r-done", Status: StatusOK, Result: &Done{}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := done[HeaderSize:], []byte{0x0c, 'r', '-', 'd', 'o', 'n', 'e', 0x02, 0x08}; !bytes.Equal(got, want) {
		t.Errorf("body: got % x, want % x (requestId, status OK, union index 4, no fields)", got, want)
	}
	other, err := c.EncodeResponse(&Response{RequestID: "r-reg", Status: StatusOK, Result: &RegisterResult{UserID: "u-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var kept []*Response
	for i := range 1000 {
		if i%100 == 0 {
			runtime.GC()
		}
		d, err := c.DecodeResponse(context.Background(), done)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Result.(*Done); !ok || d.RequestID != "r-done" || d.Status != StatusOK {
			t.Fatalf("decoded %+v (%T), want an OK *Done for r-done", d, d.Result)
		}
		o, err := c.DecodeResponse(context.Background(), other)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, d, o)
	}
	runtime.GC()
	for i := 1; i < len(kept); i += 2 {
		if r, ok := kept[i].Result.(*RegisterResult); !ok || r.UserID != "u-1" || kept[i].RequestID != "r-reg" {
			t.Fatalf("reply %d changed after decoding Done replies: %+v", i, kept[i])
		}
	}
	if got := fmt.Sprint(kept[0].Result); got != "&{}" {
		t.Errorf("printed %q, want &{}", got)
	}
}

func TestEventRoundTrip(t *testing.T) {
	c := newTestCodec(t, Config{})
	tests := map[string]*Event{
		"UserRegistered": {
			EventID: "e-1", OccurredAt: ms(1700000000000),
			RequestID: ptr("r-1"), UserID: ptr("u-1"), ClientID: ptr("web"), IP: ptr("192.0.2.1"),
			Payload: &UserRegistered{Email: "ada@example.com"},
		},
		"LoginSucceeded": {
			EventID: "e-2", OccurredAt: ms(1700000000001),
			Payload: &LoginSucceeded{SessionID: "s-1"},
		},
	}
	for _, r := range []LoginFailureReason{LoginFailureUnknown, LoginFailureBadCredentials, LoginFailureLocked, LoginFailureDisabled,
		LoginFailureUnknownAccount, LoginFailureEmailNotVerified} {
		tests["LoginFailed"+r.String()] = &Event{EventID: "e", OccurredAt: ms(0), Payload: &LoginFailed{Reason: r}}
	}
	for _, s := range []LockScope{LockScopeUnknown, LockScopeUnfamiliarSources, LockScopeSource, LockScopeAll} {
		tests["AccountLocked"+string(s)] = &Event{EventID: "e", OccurredAt: ms(1), UserID: ptr("u-1"), IP: ptr("192.0.2.1"), Payload: &AccountLocked{Scope: s}}
	}
	for _, r := range []RevocationReason{RevocationUnknown, RevocationLogout, RevocationLogoutAll, RevocationRefreshTokenReuse,
		RevocationPasswordChanged, RevocationPasswordReset, RevocationAccountDisabled, RevocationAccountDeleted} {
		tests["SessionRevoked"+string(r)] = &Event{EventID: "e", OccurredAt: ms(2), UserID: ptr("u-1"), Payload: &SessionRevoked{SessionID: "s-1", Reason: r}}
	}
	for name, p := range map[string]Payload{
		"AccountUnlocked":            &AccountUnlocked{},
		"SessionRefreshed":           &SessionRefreshed{SessionID: "s-1"},
		"RefreshTokenReuseDetected":  &RefreshTokenReuseDetected{SessionID: "s-1"},
		"PasswordChanged":            &PasswordChanged{},
		"PasswordResetRequested":     &PasswordResetRequested{},
		"PasswordReset":              &PasswordReset{},
		"EmailVerificationRequested": &EmailVerificationRequested{},
		"EmailVerified":              &EmailVerified{},
		"AccountDisabled":            &AccountDisabled{},
		"AccountEnabled":             &AccountEnabled{},
		"AccountDeleted":             &AccountDeleted{},
	} {
		tests[name] = &Event{EventID: "e-" + name, OccurredAt: ms(1700000000002), RequestID: ptr("r-1"), UserID: ptr("u-1"), ClientID: ptr("admin"), Payload: p}
	}
	tests["SigningKeyRotated"] = &Event{EventID: "e-3", OccurredAt: ms(1700000000003),
		Payload: &SigningKeyRotated{Kid: "k-2", Algorithm: "EdDSA", SignsFrom: ms(1700000600000)}}
	tests["SigningKeyRotatedBeforeEpoch"] = &Event{EventID: "e-4", OccurredAt: ms(-1),
		Payload: &SigningKeyRotated{Kid: "", Algorithm: "ES256", SignsFrom: ms(-1)}}
	covered := map[reflect.Type]bool{}
	for _, ev := range tests {
		covered[reflect.TypeOf(ev.Payload)] = true
	}
	for _, m := range payloadMembers {
		if !covered[reflect.PointerTo(reflect.TypeOf(m.record))] {
			t.Errorf("no round trip of %s", m.name)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := c.EncodeEvent(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.DecodeEvent(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestNotificationRoundTrip(t *testing.T) {
	c := newTestCodec(t, Config{})
	tests := map[string]*Notification{
		"PasswordReset": {
			NotificationID: "n-1", OccurredAt: ms(1700000000000),
			UserID: "u-1", Email: "ada@example.com", ClientID: ptr("web"),
			Kind: NotificationPasswordReset, Code: ptr("493817"), ExpiresAt: ptr(ms(1700000900000)),
		},
		"EmailVerification": {
			NotificationID: "n-2", OccurredAt: ms(1700000000001),
			UserID: "u-1", Email: "ünïcødé@example.com",
			Kind: NotificationEmailVerification, Code: ptr(""), ExpiresAt: ptr(ms(-1)),
		},
		"RegistrationAttemptWithoutCode": {
			NotificationID: "n-3", OccurredAt: ms(0), UserID: "u-2", Email: "bob@example.com",
			Kind: NotificationRegistrationAttempt,
		},
		"PasswordChanged": {
			NotificationID: "n-4", OccurredAt: ms(1700000000002), UserID: "u-2", Email: "bob@example.com",
			ClientID: ptr("mobile"), Kind: NotificationPasswordChanged,
		},
		"Unknown": {NotificationID: "n-5", Kind: NotificationUnknown, OccurredAt: ms(1)},
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := c.EncodeNotification(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.DecodeNotification(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestEncodeRejectsInvalidMessages(t *testing.T) {
	c := newTestCodec(t, Config{})
	tests := map[string]func() ([]byte, error){
		"NilRequest":        func() ([]byte, error) { return c.EncodeRequest(nil) },
		"NilOperation":      func() ([]byte, error) { return c.EncodeRequest(&Request{}) },
		"TypedNilOperation": func() ([]byte, error) { return c.EncodeRequest(&Request{Operation: (*Login)(nil)}) },
		"NilResponse":       func() ([]byte, error) { return c.EncodeResponse(nil) },
		"NilResult":         func() ([]byte, error) { return c.EncodeResponse(&Response{Status: StatusOK}) },
		"EmptyStatus":       func() ([]byte, error) { return c.EncodeResponse(&Response{Result: &Error{}}) },
		"LowercaseStatus":   func() ([]byte, error) { return c.EncodeResponse(&Response{Status: "ok", Result: &RegisterResult{}}) },
		"OKWithError":       func() ([]byte, error) { return c.EncodeResponse(&Response{Status: StatusOK, Result: &Error{}}) },
		"FailureWithoutError": func() ([]byte, error) {
			return c.EncodeResponse(&Response{Status: StatusConflict, Result: &RegisterResult{}})
		},
		"FailureWithDone": func() ([]byte, error) {
			return c.EncodeResponse(&Response{Status: StatusUnauthorized, Result: &Done{}})
		},
		"InactiveTokenWithClaims": func() ([]byte, error) {
			return c.EncodeResponse(&Response{Status: StatusOK, Result: &IntrospectResult{Sub: ptr("u-1")}})
		},
		"InactiveTokenWithEmptyAudience": func() ([]byte, error) {
			return c.EncodeResponse(&Response{Status: StatusOK, Result: &IntrospectResult{Aud: []string{}}})
		},
		"TypedNilResult": func() ([]byte, error) {
			return c.EncodeResponse(&Response{Status: StatusOK, Result: (*LoginResult)(nil)})
		},
		"NilEvent":        func() ([]byte, error) { return c.EncodeEvent(nil) },
		"NilPayload":      func() ([]byte, error) { return c.EncodeEvent(&Event{}) },
		"TypedNilPayload": func() ([]byte, error) { return c.EncodeEvent(&Event{Payload: (*UserRegistered)(nil)}) },
		"UnknownReason":   func() ([]byte, error) { return c.EncodeEvent(&Event{Payload: &LoginFailed{Reason: "TIRED"}}) },
		"EmptyLockScope":  func() ([]byte, error) { return c.EncodeEvent(&Event{Payload: &AccountLocked{}}) },
		"UnknownLockScope": func() ([]byte, error) {
			return c.EncodeEvent(&Event{Payload: &AccountLocked{Scope: "EVERYWHERE"}})
		},
		"UnknownRevocationReason": func() ([]byte, error) {
			return c.EncodeEvent(&Event{Payload: &SessionRevoked{SessionID: "s", Reason: "logout"}})
		},
		"TypedNilSessionRevoked": func() ([]byte, error) { return c.EncodeEvent(&Event{Payload: (*SessionRevoked)(nil)}) },
		"NilNotification":        func() ([]byte, error) { return c.EncodeNotification(nil) },
		"UnknownKind":            func() ([]byte, error) { return c.EncodeNotification(&Notification{Kind: "SPAM"}) },
		"EmptyKind":              func() ([]byte, error) { return c.EncodeNotification(&Notification{}) },
	}
	for name, encode := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := encode()
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("got %v, want ErrInvalidMessage", err)
			}
			if b != nil {
				t.Errorf("got %d bytes, want none", len(b))
			}
		})
	}
}

func mustHeader(tb testing.TB, env Envelope) [HeaderSize]byte {
	tb.Helper()
	s, err := Parse(env)
	if err != nil {
		tb.Fatal(err)
	}
	return Header(s)
}

// wireBody marshals v with the current schema of env and no framing,
// bypassing the codec's checks.
func wireBody(tb testing.TB, env Envelope, v any) []byte {
	tb.Helper()
	s, err := Parse(env)
	if err != nil {
		tb.Fatal(err)
	}
	api := avro.Config{}.Freeze()
	registerUnionTypes(api)
	b, err := api.Marshal(s, v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func soeFrame(tb testing.TB, env Envelope, body []byte) []byte {
	tb.Helper()
	h := mustHeader(tb, env)
	return append(h[:], body...)
}

func confluentFrame(id uint32, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, id), body...)
}

// hostileRequestBody is a request body whose requestId claims n bytes.
func hostileRequestBody(n int64) []byte {
	w := avro.NewWriter(nil, 16)
	w.WriteLong(n)
	return append(w.Buffer(), "abc"...)
}

func TestDecodeRequestErrors(t *testing.T) {
	c := newTestCodec(t, Config{})
	valid, err := c.EncodeRequest(&Request{RequestID: "r", Operation: &Login{Email: "e", Password: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	response, err := c.EncodeResponse(&Response{Status: StatusOK, Result: &RegisterResult{}})
	if err != nil {
		t.Fatal(err)
	}
	badFingerprint := bytes.Clone(valid)
	badFingerprint[5] ^= 0xff
	badUnion := soeFrame(t, EnvelopeRequest, []byte{
		0x02, 'r', // requestId "r"
		0x00,      // deadline null
		0x02, 'w', // clientId "w"
		0x00, 0x00, // ip, userAgent null
		0x04, // operation index 2: no such member
		0x00, 0x00,
	})
	tests := map[string]struct {
		data []byte
		want error
	}{
		"Empty":                    {nil, ErrFraming},
		"OneByte":                  {[]byte{0xc3}, ErrFraming},
		"ShortHeader":              {valid[:HeaderSize-1], ErrFraming},
		"BadSecondMarker":          {append([]byte{0xc3, 0x02}, valid[2:]...), ErrFraming},
		"UnknownMarker":            {append([]byte{'{'}, valid[1:]...), ErrFraming},
		"TooLarge":                 {append(bytes.Clone(valid), make([]byte, DefaultMaxMessageSize)...), ErrFraming},
		"UnknownFingerprint":       {badFingerprint, ErrUnknownSchema},
		"OtherEnvelopesSchema":     {response, ErrUnknownSchema},
		"HeaderOnly":               {valid[:HeaderSize], ErrMalformed},
		"Truncated":                {valid[:len(valid)-1], ErrMalformed},
		"TrailingBytes":            {append(bytes.Clone(valid), 0), ErrMalformed},
		"UnknownUnionMember":       {badUnion, ErrMalformed},
		"NegativeLength":           {soeFrame(t, EnvelopeRequest, hostileRequestBody(-5)), ErrMalformed},
		"HostileLength":            {soeFrame(t, EnvelopeRequest, hostileRequestBody(1<<40)), ErrMalformed},
		"ConfluentWithoutRegistry": {confluentFrame(1, valid[HeaderSize:]), ErrNoRegistry},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := c.DecodeRequest(context.Background(), tc.data)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Errorf("got %+v, want nil", got)
			}
		})
	}
}

func TestDecodeResponseRejectsBrokenEnvelopeRules(t *testing.T) {
	c := newTestCodec(t, Config{})
	tests := map[string]wireResponse{
		"OKWithError":         {RequestID: "r", Status: StatusOK, Result: &Error{Message: "m"}},
		"FailureWithoutError": {RequestID: "r", Status: StatusNotFound, Result: &RegisterResult{UserID: "u"}},
		"InactiveTokenWithClaims": {RequestID: "r", Status: StatusOK, Result: &IntrospectResult{
			Exp: ptr(ms(1)), EmailVerified: ptr(true),
		}},
	}
	for name, w := range tests {
		t.Run(name, func(t *testing.T) {
			data := soeFrame(t, EnvelopeResponse, wireBody(t, EnvelopeResponse, &w))
			if _, err := c.DecodeResponse(context.Background(), data); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeEventRejectsUnknownEnumSymbol(t *testing.T) {
	c := newTestCodec(t, Config{})
	body := wireBody(t, EnvelopeEvent, &wireEvent{EventID: "e", Payload: &LoginFailed{Reason: LoginFailureLocked}})
	body[len(body)-1] = 0x10 // reason index 8; the enum has 6 symbols
	if _, err := c.DecodeEvent(context.Background(), soeFrame(t, EnvelopeEvent, body)); !errors.Is(err, ErrMalformed) {
		t.Errorf("got %v, want ErrMalformed", err)
	}
}

// TestDecodeErrorsDoNotLeakValues truncates and corrupts a request at every
// position and checks no error message repeats the password or e-mail.
func TestDecodeErrorsDoNotLeakValues(t *testing.T) {
	c := newTestCodec(t, Config{})
	const password, email = "hunter2-SECRET", "victim@example.com"
	valid, err := c.EncodeRequest(&Request{RequestID: "r", Operation: &Login{Email: email, Password: password}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(data []byte) {
		t.Helper()
		_, err := c.DecodeRequest(context.Background(), data)
		if err == nil {
			return
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, "victim") {
			t.Errorf("error leaks a value: %s", msg)
		}
	}
	for i := range valid {
		check(valid[:i])
		corrupt := bytes.Clone(valid)
		corrupt[i] ^= 0x41
		check(corrupt)
	}
	check(append(bytes.Clone(valid), "trailing"...))
	if s := fmt.Sprintf("%v %+v %#v %s", &Login{Email: email, Password: password}, Register{Password: password},
		Request{Operation: &Login{Password: password}}, LoginResult{AccessToken: password, RefreshToken: password}); strings.Contains(s, "hunter2") {
		t.Errorf("formatting leaks a secret: %s", s)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", &Notification{Code: ptr(password)}, Notification{Code: ptr(password)},
		Notification{Code: ptr(password)}, []*Notification{{Code: ptr(password)}}); strings.Contains(s, "hunter2") {
		t.Errorf("formatting leaks a secret: %s", s)
	}
}

// TestDecodeBoundsAllocation feeds length prefixes far beyond the message and
// checks the decoder does not allocate for them.
func TestDecodeBoundsAllocation(t *testing.T) {
	tests := map[string]struct {
		cfg       Config
		length    int64
		maxPerRun uint64
	}{
		"TerabyteString":         {Config{}, 1 << 40, 64 << 10},
		"JustAboveDefaultLimit":  {Config{}, DefaultMaxMessageSize + 1, 64 << 10},
		"JustBelowConfiguredCap": {Config{MaxMessageSize: 64 << 10}, 64<<10 - 1, 256 << 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newTestCodec(t, tc.cfg)
			data := soeFrame(t, EnvelopeRequest, hostileRequestBody(tc.length))
			const runs = 20
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range runs {
				if _, err := c.DecodeRequest(context.Background(), data); !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, want ErrMalformed", err)
				}
			}
			runtime.ReadMemStats(&after)
			got := (after.TotalAlloc - before.TotalAlloc) / runs
			t.Logf("%d bytes allocated per decode", got)
			if got > tc.maxPerRun {
				t.Errorf("allocated %d bytes per decode, want at most %d", got, tc.maxPerRun)
			}
		})
	}
}

// fakeRegistry is an in-memory SchemaRegistry that counts lookups.
type fakeRegistry struct {
	mu      sync.Mutex
	schemas map[int]string
	down    bool
	calls   map[int]int
}

func newFakeRegistry(schemas map[int]string) *fakeRegistry {
	return &fakeRegistry{schemas: schemas, calls: map[int]int{}}
}

func (r *fakeRegistry) SchemaByID(ctx context.Context, id int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[id]++
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if r.down {
		return "", errors.New("connection refused")
	}
	s, ok := r.schemas[id]
	if !ok {
		return "", fmt.Errorf("schema %d: %w", id, ErrUnknownSchema)
	}
	return s, nil
}

func (r *fakeRegistry) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *fakeRegistry) callsFor(id int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

// olderRequestSchema is a plausible earlier AuthRequest: no userAgent, no
// Register, and a field the current schema dropped.
const olderRequestSchema = `{
  "type": "record", "name": "AuthRequest", "namespace": "authworker",
  "fields": [
    {"name": "requestId", "type": "string"},
    {"name": "deadline", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null},
    {"name": "client", "type": {"type": "record", "name": "ClientMetadata", "fields": [
      {"name": "clientId", "type": "string"},
      {"name": "ip", "type": ["null", "string"], "default": null}
    ]}},
    {"name": "legacyFlag", "type": "boolean", "default": false},
    {"name": "operation", "type": [{"type": "record", "name": "Login", "fields": [
      {"name": "email", "type": "string"},
      {"name": "password", "type": "string"}
    ]}]}
  ]
}`

// olderRequestData is olderRequestSchema's encoding of a Login with an IP.
func olderRequestData(tb testing.TB) []byte {
	tb.Helper()
	s, err := parse([]byte(olderRequestSchema))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := avro.Marshal(s, map[string]any{
		"requestId":  "old-1",
		"deadline":   nil,
		"client":     map[string]any{"clientId": "legacy", "ip": map[string]any{"string": "192.0.2.9"}},
		"legacyFlag": true,
		"operation":  map[string]any{"authworker.Login": map[string]any{"email": "ada@example.com", "password": "pw"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// olderRequestWant is what olderRequestData decodes to.
func olderRequestWant() *Request {
	return &Request{
		RequestID: "old-1",
		Client:    ClientMetadata{ClientID: "legacy", IP: ptr("192.0.2.9")},
		Operation: &Login{Email: "ada@example.com", Password: "pw"},
	}
}

func TestDecodeConfluent(t *testing.T) {
	current, err := Source(EnvelopeRequest)
	if err != nil {
		t.Fatal(err)
	}
	incompatible := strings.Replace(string(current), `"name": "requestId",
      "type": "string"`, `"name": "requestId",
      "type": "int"`, 1)
	if incompatible == string(current) {
		t.Fatal("could not derive an incompatible schema")
	}
	c0 := newTestCodec(t, Config{})
	want := &Request{RequestID: "r", Client: ClientMetadata{ClientID: "web"}, Operation: &Register{Email: "e", Password: "p"}}
	soeData, err := c0.EncodeRequest(want)
	if err != nil {
		t.Fatal(err)
	}
	body := soeData[HeaderSize:]

	tests := map[string]struct {
		data    []byte
		want    *Request
		wantErr error
	}{
		"CurrentSchema":   {data: confluentFrame(1, body), want: want},
		"OlderSchema":     {data: confluentFrame(2, olderRequestData(t)), want: olderRequestWant()},
		"UnknownID":       {data: confluentFrame(99, body), wantErr: ErrUnknownSchema},
		"NegativeID":      {data: confluentFrame(0xffffffff, body), wantErr: ErrUnknownSchema},
		"Incompatible":    {data: confluentFrame(3, body), wantErr: ErrIncompatibleSchema},
		"Unparseable":     {data: confluentFrame(4, body), wantErr: ErrIncompatibleSchema},
		"OtherEnvelope":   {data: confluentFrame(5, body), wantErr: ErrIncompatibleSchema},
		"ShortHeader":     {data: []byte{0, 0, 0, 1}, wantErr: ErrFraming},
		"TrailingBytes":   {data: confluentFrame(1, append(bytes.Clone(body), 0)), wantErr: ErrMalformed},
		"SOEStillDecodes": {data: soeData, want: want},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			response, err := Source(EnvelopeResponse)
			if err != nil {
				t.Fatal(err)
			}
			reg := newFakeRegistry(map[int]string{
				1: string(current),
				2: olderRequestSchema,
				3: incompatible,
				4: `{"type": "record", "name": `,
				5: string(response),
			})
			c := newTestCodec(t, Config{Registry: reg})
			for range 2 { // the second pass is served from the cache
				got, err := c.DecodeRequest(context.Background(), tc.data)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
			}
			for id := range 6 {
				if n := reg.callsFor(id); n > 1 && !errors.Is(tc.wantErr, ErrUnknownSchema) {
					t.Errorf("registry asked %d times for id %d, want at most once", n, id)
				}
			}
		})
	}
}

func TestDecodeConfluentRegistryFailureIsTransient(t *testing.T) {
	current, err := Source(EnvelopeRequest)
	if err != nil {
		t.Fatal(err)
	}
	reg := newFakeRegistry(map[int]string{7: string(current)})
	c := newTestCodec(t, Config{Registry: reg})
	plain := newTestCodec(t, Config{})
	soeData, err := plain.EncodeRequest(&Request{Operation: &Login{}})
	if err != nil {
		t.Fatal(err)
	}
	data := confluentFrame(7, soeData[HeaderSize:])

	reg.setDown(true)
	if _, err := c.DecodeRequest(context.Background(), data); !errors.Is(err, ErrRegistryUnavailable) {
		t.Fatalf("registry down: got %v, want ErrRegistryUnavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reg.setDown(false)
	if _, err := c.DecodeRequest(ctx, data); !errors.Is(err, ErrRegistryUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v, want ErrRegistryUnavailable wrapping context.Canceled", err)
	}
	if _, err := c.DecodeRequest(context.Background(), data); err != nil {
		t.Fatalf("registry back: got %v, want success", err)
	}
	if got, want := reg.callsFor(7), 3; got != want {
		t.Errorf("registry calls: got %d, want %d", got, want)
	}
}

// TestDecodeOlderHistoryVersion gives the codec a history whose v1 differs
// from the current schema, so that schema resolution really runs.
func TestDecodeOlderHistoryVersion(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, env := range Envelopes() {
		src, err := Source(env)
		if err != nil {
			t.Fatal(err)
		}
		fsys[env.String()+".avsc"] = &fstest.MapFile{Data: src}
		fsys["history/"+env.String()+"/v1.avsc"] = &fstest.MapFile{Data: src}
	}
	current := fsys["auth_request.avsc"].Data
	fsys["history/auth_request/v1.avsc"] = &fstest.MapFile{Data: []byte(olderRequestSchema)}
	fsys["history/auth_request/v2.avsc"] = &fstest.MapFile{Data: current}
	c, err := newCodec(Config{}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	old, err := parse([]byte(olderRequestSchema))
	if err != nil {
		t.Fatal(err)
	}
	h := Header(old)
	got, err := c.DecodeRequest(context.Background(), append(h[:], olderRequestData(t)...))
	if err != nil {
		t.Fatal(err)
	}
	if want := olderRequestWant(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestNewCodecRejectsBadSetups(t *testing.T) {
	files := func(mutate func(fstest.MapFS)) fstest.MapFS {
		fsys := fstest.MapFS{}
		for _, env := range Envelopes() {
			src, err := Source(env)
			if err != nil {
				t.Fatal(err)
			}
			fsys[env.String()+".avsc"] = &fstest.MapFile{Data: src}
			fsys["history/"+env.String()+"/v1.avsc"] = &fstest.MapFile{Data: src}
		}
		mutate(fsys)
		return fsys
	}
	event, err := Source(EnvelopeEvent)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cfg  Config
		fsys fstest.MapFS
	}{
		"TinyMaxMessageSize": {Config{MaxMessageSize: 4}, files(func(fstest.MapFS) {})},
		"HistoryGap": {Config{}, files(func(f fstest.MapFS) {
			f["history/auth_event/v3.avsc"] = &fstest.MapFile{Data: event}
		})},
		"BadHistoryName": {Config{}, files(func(f fstest.MapFS) {
			f["history/auth_event/v2-draft.avsc"] = &fstest.MapFile{Data: event}
		})},
		"NoHistory": {Config{}, files(func(f fstest.MapFS) {
			delete(f, "history/auth_event/v1.avsc")
		})},
		"IncompatibleHistory": {Config{}, files(func(f fstest.MapFS) {
			f["history/auth_event/v2.avsc"] = &fstest.MapFile{Data: []byte(`{"type":"record","name":"AuthEvent","namespace":"authworker","fields":[{"name":"eventId","type":"long"}]}`)}
		})},
		"UnionMemberWithoutGoType": {Config{}, files(func(f fstest.MapFS) {
			src := strings.Replace(string(event), `"name": "UserRegistered"`, `"name": "UserDeleted"`, 1)
			f["auth_event.avsc"] = &fstest.MapFile{Data: []byte(src)}
		})},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if c, err := newCodec(tc.cfg, tc.fsys); err == nil {
				t.Errorf("got codec %p, want an error", c)
			}
		})
	}
}

func TestCodecIsSafeForConcurrentUse(t *testing.T) {
	current, err := Source(EnvelopeRequest)
	if err != nil {
		t.Fatal(err)
	}
	reg := newFakeRegistry(map[int]string{1: string(current)})
	c := newTestCodec(t, Config{Registry: reg})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				want := &Request{RequestID: fmt.Sprintf("r-%d-%d", i, j), Operation: &Login{Email: "e", Password: "p"}}
				b, err := c.EncodeRequest(want)
				if err != nil {
					t.Error(err)
					return
				}
				for _, data := range [][]byte{b, confluentFrame(1, b[HeaderSize:])} {
					got, err := c.DecodeRequest(context.Background(), data)
					if err != nil {
						t.Error(err)
						return
					}
					if got.RequestID != want.RequestID {
						t.Errorf("got %q, want %q", got.RequestID, want.RequestID)
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestEnumConstantsMatchSchema: every symbol of an enum the codec checks
// on encode has a Go constant that the check accepts, so that no schema
// symbol is refused.
func TestEnumConstantsMatchSchema(t *testing.T) {
	tests := []struct {
		env   Envelope
		enum  string
		valid func(string) bool
	}{
		{EnvelopeEvent, "authworker.LoginFailureReason", func(s string) bool { return LoginFailureReason(s).Valid() }},
		{EnvelopeEvent, "authworker.LockScope", func(s string) bool { return LockScope(s).Valid() }},
		{EnvelopeEvent, "authworker.RevocationReason", func(s string) bool { return RevocationReason(s).Valid() }},
		{EnvelopeResponse, "authworker.Status", func(s string) bool { return Status(s).Valid() }},
		{EnvelopeNotification, "authworker.NotificationKind", func(s string) bool { return NotificationKind(s).Valid() }},
	}
	for _, tt := range tests {
		t.Run(tt.enum, func(t *testing.T) {
			s, err := Parse(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			enum := findEnum(s, tt.enum)
			if enum == nil {
				t.Fatalf("%s has no enum %s", tt.env, tt.enum)
			}
			for _, sym := range enum.Symbols() {
				if !tt.valid(sym) {
					t.Errorf("schema symbol %q has no Go constant", sym)
				}
			}
			if tt.valid("NOT_A_SYMBOL") {
				t.Error("NOT_A_SYMBOL is accepted")
			}
		})
	}
}

// findEnum returns the enum named fullName in s, or nil.
func findEnum(s avro.Schema, fullName string) *avro.EnumSchema {
	switch s := s.(type) {
	case *avro.EnumSchema:
		if s.FullName() == fullName {
			return s
		}
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if e := findEnum(f.Type(), fullName); e != nil {
				return e
			}
		}
	case *avro.UnionSchema:
		for _, t := range s.Types() {
			if e := findEnum(t, fullName); e != nil {
				return e
			}
		}
	case *avro.ArraySchema:
		return findEnum(s.Items(), fullName)
	case *avro.MapSchema:
		return findEnum(s.Values(), fullName)
	}
	return nil
}

func TestSourceAndParseRejectUnknownEnvelope(t *testing.T) {
	if _, err := Source(Envelope(0)); !errors.Is(err, ErrUnknownEnvelope) {
		t.Errorf("Source: got %v, want ErrUnknownEnvelope", err)
	}
	if _, err := Parse(Envelope(9)); !errors.Is(err, ErrUnknownEnvelope) {
		t.Errorf("Parse: got %v, want ErrUnknownEnvelope", err)
	}
	if _, err := History(Envelope(-1)); !errors.Is(err, ErrUnknownEnvelope) {
		t.Errorf("History: got %v, want ErrUnknownEnvelope", err)
	}
}

// TestOperationsMatchSchema: Operations lists exactly the request union.
func TestOperationsMatchSchema(t *testing.T) {
	req, err := Parse(EnvelopeRequest)
	if err != nil {
		t.Fatal(err)
	}
	var union *avro.UnionSchema
	for _, f := range req.(*avro.RecordSchema).Fields() {
		if f.Name() == "operation" {
			union = f.Type().(*avro.UnionSchema)
		}
	}
	ops := Operations()
	if len(ops) != len(union.Types()) {
		t.Fatalf("Operations() has %d records, the schema %d", len(ops), len(union.Types()))
	}
	c, err := NewCodec(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range ops {
		b, err := c.EncodeRequest(&Request{RequestID: "r", Client: ClientMetadata{ClientID: "c"}, Operation: op})
		if err != nil {
			t.Fatalf("%T: %v", op, err)
		}
		got, err := c.DecodeRequest(t.Context(), b)
		if err != nil {
			t.Fatalf("%T: %v", op, err)
		}
		if want := union.Types()[i].(avro.NamedSchema).Name(); fmt.Sprintf("%T", got.Operation) != "*schemas."+want {
			t.Errorf("operation %d decodes as %T, want *schemas.%s", i, got.Operation, want)
		}
	}
}

// TestPayloadsMatchSchema: Payloads lists exactly the event payload union.
func TestPayloadsMatchSchema(t *testing.T) {
	ev, err := Parse(EnvelopeEvent)
	if err != nil {
		t.Fatal(err)
	}
	var union *avro.UnionSchema
	for _, f := range ev.(*avro.RecordSchema).Fields() {
		if f.Name() == "payload" {
			union = f.Type().(*avro.UnionSchema)
		}
	}
	ps := Payloads()
	if len(ps) != len(union.Types()) {
		t.Fatalf("Payloads() has %d records, the schema %d", len(ps), len(union.Types()))
	}
	for i, p := range ps {
		if want := union.Types()[i].(avro.NamedSchema).FullName(); EventType(p) != want {
			t.Errorf("payload %d is %s, want %s", i, EventType(p), want)
		}
	}
}

func TestOperationBytes(t *testing.T) {
	c, err := NewCodec(Config{})
	if err != nil {
		t.Fatal(err)
	}
	login := &Login{Email: "ada@example.com", Password: "plum kayak violet thunder"}
	got, err := c.OperationBytes(login)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.UnixMilli(1_800_000_000_000)
	ip := "192.0.2.1"
	full, err := c.EncodeRequest(&Request{RequestID: "r-1", Deadline: &deadline, Client: ClientMetadata{ClientID: "web", IP: &ip}, Operation: login})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(full, got) {
		t.Errorf("OperationBytes %x is not the end of the full request %x", got, full)
	}
	if got[0] != 2 { // zig-zag 1: Login is the second member of the union
		t.Errorf("union index byte %#x, want 0x02 (Login)", got[0])
	}
	other, _ := c.OperationBytes(&Register{Email: login.Email, Password: login.Password})
	if bytes.Equal(got, other) {
		t.Error("a Register with the same fields has the same bytes as the Login")
	}
}
