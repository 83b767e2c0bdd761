// Package kafkalog sends the lines librdkafka logs of its own accord (a
// broker connection lost, a request timed out, debug output) to a
// slog.Logger, as structured records, instead of to standard error as
// plain text: the worker's log stays one stream of JSON.
//
// librdkafka hands its lines to a queue of the client's, which the Kafka
// client for Go polls in a goroutine of its own (one cgo call every 100 ms
// at most when nothing is logged) and sends to a channel; a Forwarder
// reads that channel.
package kafkalog

import (
	"context"
	"log/slog"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// channelSize is how many lines wait for the Forwarder: the client's own
// default, 10,000 entries of pointers, would be scanned by every garbage
// collection for nothing.
const channelSize = 64

// Forwarder sends one client's librdkafka lines to a logger.
type Forwarder struct {
	lines  chan kafka.LogEvent
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Forward has the client that conf configures log to logger: it sets
// conf's go.logs.channel properties and starts the Forwarder. Call Close
// once the client is closed, or was not created.
func Forward(conf kafka.ConfigMap, logger *slog.Logger) *Forwarder {
	f := &Forwarder{
		lines:  make(chan kafka.LogEvent, channelSize),
		logger: logger,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	conf["go.logs.channel.enable"] = true
	conf["go.logs.channel"] = f.lines
	go f.run()
	return f
}

func (f *Forwarder) run() {
	defer close(f.done)
	for {
		select {
		case ev := <-f.lines:
			f.log(ev)
		case <-f.stop:
			for { // what the client sent before it closed
				select {
				case ev := <-f.lines:
					f.log(ev)
				default:
					return
				}
			}
		}
	}
}

// log writes one line at the slog level of its syslog level.
func (f *Forwarder) log(ev kafka.LogEvent) {
	f.logger.Log(context.Background(), Level(ev.Level), ev.Message,
		"component", "kafka client", "client", ev.Name, "tag", ev.Tag)
}

// Level maps a syslog level, as librdkafka gives it, to a slog level:
// emergency to error are errors, warning a warning, notice and info are
// info, debug is debug.
func Level(syslog int) slog.Level {
	switch {
	case syslog <= 3:
		return slog.LevelError
	case syslog == 4:
		return slog.LevelWarn
	case syslog <= 6:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// Close stops the Forwarder once it has logged what the client sent. The
// client must be closed first: it sends no line after its Close returns.
// Close is safe to call more than once.
func (f *Forwarder) Close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}
