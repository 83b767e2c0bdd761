package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/schemas"
)

// events runs an events subcommand: tail is the only one.
func events(e *env, args []string) error {
	if len(args) == 0 {
		return errors.New("events: tail is required")
	}
	if args[0] != "tail" {
		return fmt.Errorf("events: unknown action %q (tail)", args[0])
	}
	return eventsTail(e, args[1:])
}

// tailOptions are the flags of events tail.
type tailOptions struct {
	topic     string
	types     map[string]bool // full ce_type values; nil for every type
	user      string          // ce_subject; "" for every user
	beginning bool            // -from beginning, else from the end
	max       int             // 0 for no limit
	json      bool
}

// eventsTail follows the events topic and prints the events that pass the
// filters, until interrupted or until -max were printed. It reads every
// partition by assignment and commits nothing: it moves no consumer group
// and can run beside the stream processors without disturbing them.
func eventsTail(e *env, args []string) error {
	var o tailOptions
	var types, from string
	if err := flags("events tail", args, func(fs *flag.FlagSet) {
		fs.StringVar(&o.topic, "topic", getenv("AUTH_EVENTS_TOPIC", "auth.events"), "events topic")
		fs.StringVar(&types, "type", "", "print only events of these types, comma-separated (LoginFailed or authworker.LoginFailed)")
		fs.StringVar(&o.user, "user", "", "print only the events of this user id")
		fs.StringVar(&from, "from", "end", "beginning: from the oldest event kept; end: only events published from now on")
		fs.IntVar(&o.max, "max", 0, "stop after printing this many events (0: follow until interrupted)")
		fs.BoolVar(&o.json, "json", false, "print one JSON object per event")
	}); err != nil {
		return err
	}
	var err error
	if o.types, err = parseEventTypes(types); err != nil {
		return err
	}
	switch from {
	case "beginning":
		o.beginning = true
	case "end":
	default:
		return fmt.Errorf("events tail: -from must be beginning or end, not %q", from)
	}
	if o.max < 0 {
		return fmt.Errorf("events tail: -max must not be negative, got %d", o.max)
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return err
	}
	show := printTailedLine
	if o.json {
		show = printTailedJSON
	}
	n := 0
	return followTopic(e.untimed, e.bootstrap, o.topic, o.beginning, func(m *kafka.Message) (bool, error) {
		h := eventHeaders(m.Headers)
		if o.types != nil && !o.types[h.get(schemas.HeaderCEType)] {
			return false, nil
		}
		if o.user != "" && h.get(schemas.HeaderCESubject) != o.user {
			return false, nil
		}
		t := tailed{m: m, headers: h}
		t.event, t.err = codec.DecodeEvent(e.untimed, m.Value)
		if err := show(e.stdout, &t); err != nil {
			return false, err
		}
		n++
		return o.max > 0 && n >= o.max, nil
	})
}

// eventTypeNames are the ce_type values of every event the schema carries,
// in schema order.
func eventTypeNames() []string {
	var names []string
	for _, p := range schemas.Payloads() {
		names = append(names, schemas.EventType(p))
	}
	return names
}

// parseEventTypes turns -type into the set of ce_type values it names, or
// nil when it is empty. A name may be given with or without the
// "authworker." prefix.
func parseEventTypes(list string) (map[string]bool, error) {
	if list == "" {
		return nil, nil
	}
	known := eventTypeNames()
	types := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		full := schemas.EventTypePrefix + strings.TrimPrefix(name, schemas.EventTypePrefix)
		if !slices.Contains(known, full) {
			short := make([]string, len(known))
			for i, k := range known {
				short[i] = strings.TrimPrefix(k, schemas.EventTypePrefix)
			}
			return nil, fmt.Errorf("events tail: unknown event type %q; the types are %s", name, strings.Join(short, ", "))
		}
		types[full] = true
	}
	return types, nil
}

// followTopic calls fn for the records of every partition of topic, from
// the oldest kept (beginning) or from those published after it starts,
// until fn says it is done or ctx ends, which is not an error. The
// partitions are those the topic has when it starts.
func followTopic(ctx context.Context, bootstrap, topic string, beginning bool, fn func(*kafka.Message) (done bool, err error)) error {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "authctl-events-tail",
		"enable.auto.commit": false, "enable.auto.offset.store": false,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() != kafka.ErrNoError || len(t.Partitions) == 0 {
		return fmt.Errorf("topic %s does not exist", topic)
	}
	var assignment []kafka.TopicPartition
	for _, p := range t.Partitions {
		start := kafka.OffsetBeginning
		if !beginning {
			// The end as it is now, not as it is when the first fetch
			// resolves OffsetEnd: an event published after the tail
			// started is never missed.
			_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
			if err != nil {
				return fmt.Errorf("topic %s partition %d: %w", topic, p.ID, err)
			}
			start = kafka.Offset(high)
		}
		assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: start})
	}
	if err := c.Assign(assignment); err != nil {
		return err
	}
	following()
	for ctx.Err() == nil {
		m, err := c.ReadMessage(100 * time.Millisecond)
		if err != nil {
			if kerr, ok := errors.AsType[kafka.Error](err); ok && !kerr.IsFatal() &&
				kerr.Code() != kafka.ErrUnknownTopicOrPart && kerr.Code() != kafka.ErrUnknownTopic {
				continue // a timeout, or a broker the client reconnects to
			}
			return err
		}
		done, err := fn(m)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// following is called once a tail has fixed where it starts; tests wait
// for it before they publish what the tail must see.
var following = func() {}

// eventHeaders are a record's headers.
type eventHeaders []kafka.Header

// get returns the first value of the header key, or "".
func (hs eventHeaders) get(key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// printed returns the CloudEvents headers (ce_*, content-type) and
// traceparent, by name, first value per key.
func (hs eventHeaders) printed() map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		switch {
		case strings.HasPrefix(h.Key, "ce_"), h.Key == schemas.HeaderContentType, h.Key == schemas.HeaderTraceparent:
			if _, dup := out[h.Key]; !dup {
				out[h.Key] = string(h.Value)
			}
		}
	}
	return out
}

// tailed is one record of the events topic, decoded or not.
type tailed struct {
	m       *kafka.Message
	headers eventHeaders
	event   *schemas.Event
	err     error
}

// tailedJSON is a record as events tail -json prints it.
type tailedJSON struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	// Headers are the CloudEvents headers, and traceparent when the
	// record has one.
	Headers map[string]string `json:"headers"`
	Event   *printedEvent     `json:"event,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// printedEvent is a decoded event. Events carry no secrets: it is printed
// whole.
type printedEvent struct {
	EventID    string         `json:"eventId"`
	OccurredAt string         `json:"occurredAt"` // as ce_time: RFC 3339 UTC, milliseconds
	RequestID  *string        `json:"requestId"`
	UserID     *string        `json:"userId"`
	ClientID   *string        `json:"clientId"`
	IP         *string        `json:"ip"`
	Type       string         `json:"type"` // the payload record's name, such as LoginFailed
	Payload    map[string]any `json:"payload"`
}

func printTailedJSON(w io.Writer, t *tailed) error {
	out := tailedJSON{
		Partition: t.m.TopicPartition.Partition, Offset: int64(t.m.TopicPartition.Offset),
		Key: string(t.m.Key), Headers: t.headers.printed(),
	}
	if t.err != nil {
		out.Error = "cannot decode the event: " + t.err.Error()
		return printJSONLine(w, out)
	}
	ev := t.event
	out.Event = &printedEvent{
		EventID: ev.EventID, OccurredAt: ev.OccurredAt.UTC().Format(millisLayout), RequestID: ev.RequestID, UserID: ev.UserID,
		ClientID: ev.ClientID, IP: ev.IP, Type: shortType(schemas.EventType(ev.Payload)),
		Payload: map[string]any{},
	}
	for _, f := range payloadFields(ev.Payload) {
		out.Event.Payload[f.name] = fieldJSON(f.value)
	}
	return printJSONLine(w, out)
}

// printTailedLine prints an event as one line: its ce_time, type, user id
// or "-", request and client ids, and its payload's fields. A record that
// cannot be decoded gets an ERROR line naming where it is.
func printTailedLine(w io.Writer, t *tailed) error {
	if t.err != nil {
		_, err := fmt.Fprintf(w, "ERROR partition=%d offset=%d key=%s type=%s: cannot decode the event: %s\n",
			t.m.TopicPartition.Partition, t.m.TopicPartition.Offset, field(string(t.m.Key)),
			field(shortType(t.headers.get(schemas.HeaderCEType))), t.err)
		return err
	}
	ev := t.event
	when := t.headers.get(schemas.HeaderCETime)
	if when == "" {
		when = ev.OccurredAt.UTC().Format(millisLayout)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s request=%s client=%s", field(when), shortType(schemas.EventType(ev.Payload)),
		field(deref(ev.UserID)), field(deref(ev.RequestID)), field(deref(ev.ClientID)))
	for _, f := range payloadFields(ev.Payload) {
		if s, ok := fieldText(f.value); ok {
			fmt.Fprintf(&b, " %s=%s", f.name, field(s))
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// millisLayout is that of ce_time: RFC 3339 UTC with milliseconds.
const millisLayout = "2006-01-02T15:04:05.000Z07:00"

// shortType is a ce_type without its "authworker." prefix, or "-".
func shortType(ceType string) string {
	if ceType == "" {
		return "-"
	}
	return strings.TrimPrefix(ceType, schemas.EventTypePrefix)
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// field is s as one word of a line: quoted when it is empty or holds a
// space, a quote, an equals sign or anything unprintable, so that a value
// from a client can neither split a line nor drive the terminal.
func field(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return r == '"' || r == '=' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return strconv.Quote(s)
	}
	return s
}

// payloadField is one field of a payload record, by its Avro name.
type payloadField struct {
	name  string
	value reflect.Value
}

// payloadFields returns the fields of p in schema order, named as the
// schema names them, so that a record added to the union prints without a
// change here.
func payloadFields(p schemas.Payload) []payloadField {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	v = v.Elem()
	var fields []payloadField
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("avro"), ",")
		if name == "" {
			name = f.Name
		}
		fields = append(fields, payloadField{name, v.Field(i)})
	}
	return fields
}

// fieldText is a payload field's value as text, or false for a null.
func fieldText(v reflect.Value) (string, bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "", false
		}
		v = v.Elem()
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC().Format(millisLayout), true
	}
	if v.Kind() == reflect.String {
		return v.String(), true
	}
	return fmt.Sprint(v.Interface()), true
}

// fieldJSON is a payload field's value for encoding/json: a time in the
// layout of ce_time, nil for a null.
func fieldJSON(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC().Format(millisLayout)
	}
	return v.Interface()
}
