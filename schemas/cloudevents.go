package schemas

import (
	"reflect"
	"strings"

	"github.com/authworker/authworker/domain"
)

// Event headers: the CloudEvents 1.0 Kafka protocol binding in binary
// content mode, so that a consumer can route, filter and trace an event
// without decoding its value, and CloudEvents tooling reads it as one of
// its own. The record's value is the event itself, single-object encoded.
const (
	// HeaderCESpecVersion is the CloudEvents version: CloudEventsSpecVersion.
	HeaderCESpecVersion = "ce_specversion"
	// HeaderCEID is the event's EventID.
	HeaderCEID = "ce_id"
	// HeaderCESource is a URI-reference naming the worker that published
	// the event; ce_source and ce_id together identify it.
	HeaderCESource = "ce_source"
	// HeaderCEType is EventType of the payload, such as
	// "authworker.UserRegistered".
	HeaderCEType = "ce_type"
	// HeaderCETime is the event's OccurredAt, in RFC 3339 UTC with
	// milliseconds, as the value carries it: "2023-11-14T22:13:20.123Z".
	HeaderCETime = "ce_time"
	// HeaderCESubject is the event's UserID. It is absent when the event
	// has none.
	HeaderCESubject = "ce_subject"
	// HeaderContentType is the value's media type: EventContentType.
	HeaderContentType = "content-type"
	// HeaderTraceparent is the W3C Trace Context traceparent of what caused
	// the event, when it carried a valid one.
	HeaderTraceparent = "traceparent"
)

// CloudEventsSpecVersion is the HeaderCESpecVersion value.
const CloudEventsSpecVersion = "1.0"

// EventContentType is the HeaderContentType value: an AuthEvent in Avro
// single-object encoding, whose header names the writer schema.
const EventContentType = "application/avro"

// EventTypePrefix starts every HeaderCEType value.
const EventTypePrefix = "authworker."

// ceTimeLayout is RFC 3339 with exactly three fractional digits. The value
// keeps milliseconds, so the header says no more than it does.
const ceTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// EventHeaders returns the headers of an event record, in the order listed
// above. source is the worker's ce_source, a non-empty URI-reference that
// the caller's configuration validates. traceparent is that of the request
// or message that caused the event, or ""; one that ValidTraceparent
// refuses is dropped rather than passed on.
func EventHeaders(ev *Event, source, traceparent string) []domain.MessageHeader {
	hs := make([]domain.MessageHeader, 0, 8)
	add := func(key, value string) {
		hs = append(hs, domain.MessageHeader{Key: key, Value: []byte(value)})
	}
	add(HeaderCESpecVersion, CloudEventsSpecVersion)
	add(HeaderCEID, ev.EventID)
	add(HeaderCESource, source)
	add(HeaderCEType, EventType(ev.Payload))
	add(HeaderCETime, ev.OccurredAt.UTC().Format(ceTimeLayout))
	if ev.UserID != nil {
		add(HeaderCESubject, *ev.UserID)
	}
	add(HeaderContentType, EventContentType)
	if ValidTraceparent(traceparent) {
		add(HeaderTraceparent, traceparent)
	}
	return hs
}

// EventType returns the CloudEvents type of an event with payload p:
// EventTypePrefix and the name of its Avro record, such as
// "authworker.LoginFailed". It returns "" for a nil payload.
func EventType(p Payload) string {
	t := reflect.TypeOf(p)
	for _, m := range payloadMembers {
		if t == reflect.PointerTo(reflect.TypeOf(m.record)) {
			return EventTypePrefix + m.name[strings.LastIndexByte(m.name, '.')+1:]
		}
	}
	return ""
}

// ValidTraceparent reports whether s is a W3C Trace Context traceparent of
// version 00: 55 characters, "00-", a 32-digit trace id, "-", a 16-digit
// parent id, "-" and two digits of flags, all lowercase hexadecimal, with
// neither id all zeros. Other versions are refused: the worker passes the
// header on as it came, so it must be one that every reader parses.
func ValidTraceparent(s string) bool {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	traceID, parentID, flags := s[3:35], s[36:52], s[53:]
	return lowerHex(traceID) && lowerHex(parentID) && lowerHex(flags) &&
		strings.Trim(traceID, "0") != "" && strings.Trim(parentID, "0") != ""
}

// lowerHex reports whether s is made of the digits 0-9 and a-f only.
func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
