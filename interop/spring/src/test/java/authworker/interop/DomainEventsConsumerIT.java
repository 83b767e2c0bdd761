package authworker.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.SchemaStore;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.listener.ConcurrentMessageListenerContainer;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.requestreply.ReplyingKafkaTemplate;

/**
 * A stream processor's view of the events topic, written from the wire
 * contract and the .avsc files only: requests go through a plain Spring
 * {@code ReplyingKafkaTemplate} carrying a W3C {@code traceparent}, and the
 * events they cause are read back with a plain {@code KafkaConsumer} (byte[]
 * values, manual assignment, from the beginning) and decoded with Avro's own
 * {@code BinaryMessageDecoder}, which looks the writer schema up by the
 * fingerprint in the single-object header in a {@code SchemaStore.Cache}
 * holding every version under schemas/history/auth_event/ and resolves it to
 * the current schemas/auth_event.avsc. The CloudEvents headers (Kafka
 * protocol binding, binary mode) are checked against the decoded value.
 *
 * <p>Environment: KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092), AUTH_REQUEST_TOPIC
 * (auth.request), AUTH_RESPONSE_TOPIC (auth.response), AUTH_EVENTS_TOPIC
 * (auth.events), AUTH_EVENT_SOURCE (the worker's ce_source; the worker's
 * default is its AUTH_ISSUER, http://localhost:8080). System property
 * authworker.schemas: the folder of the .avsc files.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DomainEventsConsumerIT {

    private static final Logger log = LoggerFactory.getLogger(DomainEventsConsumerIT.class);
    private static final Duration REPLY_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration EVENT_TIMEOUT = Duration.ofSeconds(30);
    private static final String CLIENT_ID = "spring-interop-events";
    /** ce_time: RFC 3339, UTC, exactly three fractional digits. */
    private static final Pattern CE_TIME = Pattern.compile("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z");
    /** The CloudEvents attributes and other headers an event carries at most once each. */
    private static final List<String> SINGLE_HEADERS = List.of("ce_specversion", "ce_id", "ce_source", "ce_type",
            "ce_time", "ce_subject", "content-type", "traceparent");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String bootstrap = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    private final String requestTopic = env("AUTH_REQUEST_TOPIC", "auth.request");
    private final String replyTopic = env("AUTH_RESPONSE_TOPIC", "auth.response");
    private final String eventsTopic = env("AUTH_EVENTS_TOPIC", "auth.events");
    private final String eventSource = env("AUTH_EVENT_SOURCE", env("AUTH_ISSUER", "http://localhost:8080"));

    private Schema requestSchema;
    private Schema responseSchema;
    private Schema eventSchema;
    private BinaryMessageEncoder<GenericRecord> requestEncoder;
    private BinaryMessageDecoder<GenericRecord> responseDecoder;
    private BinaryMessageDecoder<GenericRecord> eventDecoder;
    /** Fingerprint of each published auth_event version -> its file name. */
    private final Map<Long, String> eventVersions = new HashMap<>();
    /** The requestId of each request sent. */
    private final Map<ProducerRecord<String, byte[]>, String> requestIds = new IdentityHashMap<>();

    private DefaultKafkaProducerFactory<String, byte[]> producerFactory;
    private ReplyingKafkaTemplate<String, byte[], byte[]> template;
    private String group;

    @BeforeAll
    void setUp() throws Exception {
        File dir = new File(System.getProperty("authworker.schemas", "../../schemas"));
        requestSchema = parse(new File(dir, "auth_request.avsc"));
        responseSchema = parse(new File(dir, "auth_response.avsc"));
        eventSchema = parse(new File(dir, "auth_event.avsc"));
        requestEncoder = new BinaryMessageEncoder<>(GenericData.get(), requestSchema);
        responseDecoder = new BinaryMessageDecoder<>(GenericData.get(), responseSchema);
        for (File version : history(dir, "auth_response")) {
            responseDecoder.addSchema(parse(version));
        }

        // Writer schemas: every published version, found by fingerprint.
        SchemaStore.Cache writers = new SchemaStore.Cache();
        for (File version : history(dir, "auth_event")) {
            Schema s = parse(version);
            writers.addSchema(s);
            eventVersions.put(SchemaNormalization.parsingFingerprint64(s), version.getName());
        }
        eventDecoder = new BinaryMessageDecoder<>(GenericData.get(), eventSchema, writers);

        Map<String, Object> producerProps = new HashMap<>();
        producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        producerProps.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        producerProps.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        producerFactory = new DefaultKafkaProducerFactory<>(producerProps);

        group = "spring-interop-events-" + UUID.randomUUID();
        Map<String, Object> consumerProps = new HashMap<>();
        consumerProps.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        consumerProps.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        consumerProps.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        consumerProps.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        consumerProps.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        ConcurrentMessageListenerContainer<String, byte[]> container = new ConcurrentMessageListenerContainer<>(
                new DefaultKafkaConsumerFactory<>(consumerProps), new ContainerProperties(replyTopic));
        container.setBeanName("reply-" + group);
        template = new ReplyingKafkaTemplate<>(producerFactory, container);
        template.setDefaultReplyTimeout(REPLY_TIMEOUT);
        template.setDefaultTopic(requestTopic);
        template.setSharedReplyTopic(true); // other test classes read this reply topic too
        template.start();
        assertTrue(template.waitForAssignment(Duration.ofSeconds(30)), "reply container got no partitions within 30 s");
        log.info("events consumer ready: bootstrap={} request={} reply={} events={} source={} versions={}",
                bootstrap, requestTopic, replyTopic, eventsTopic, eventSource, eventVersions.values());
    }

    @AfterAll
    void tearDown() {
        if (template != null) {
            template.stop();
            template.destroy();
        }
        if (producerFactory != null) {
            producerFactory.destroy();
        }
        if (group != null) {
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                admin.deleteConsumerGroups(List.of(group)).all().get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                log.warn("could not delete consumer group {}: {}", group, e.toString());
            }
        }
    }

    /**
     * Register publishes UserRegistered, and a wrong password LoginFailed
     * (BAD_CREDENTIALS), each with CloudEvents headers that agree with the
     * value and the request's trace context.
     */
    @Test
    void registrationAndFailedLoginArePublishedAsCloudEvents() throws Exception {
        String id = UUID.randomUUID().toString();
        // Sent in mixed case with blanks around it; the event carries the
        // normalised address.
        String typed = "  Spring-Events-" + id.toUpperCase(Locale.ROOT) + "@Example.COM ";
        String email = "spring-events-" + id + "@example.com";
        String password = "interop events " + UUID.randomUUID();

        // 1. Register, with a traceparent.
        String registerTrace = traceparent();
        ProducerRecord<String, byte[]> register = request(email, "Register",
                Map.of("email", typed, "password", password), registerTrace);
        GenericRecord registered = okResult(register, "authworker.RegisterResult");
        String userId = registered.get("userId").toString();
        assertFalse(userId.isBlank(), "RegisterResult.userId");

        Event created = awaitEvent("authworker.UserRegistered", userId);
        assertEvent(created, "authworker.UserRegistered", userId, requestId(register), registerTrace);
        GenericRecord user = (GenericRecord) created.value.get("payload");
        assertEquals("authworker.UserRegistered", user.getSchema().getFullName(), "payload record");
        assertEquals(email, user.get("email").toString(), "UserRegistered.email is the normalised address");
        // Each message is written with the oldest version that carries it:
        // UserRegistered is in v1 as it is today.
        assertEquals("v1.avsc", created.writerVersion, "writer schema of a UserRegistered event");

        // 2. A wrong password, with another traceparent.
        String loginTrace = traceparent();
        ProducerRecord<String, byte[]> login = request(email, "Login",
                Map.of("email", email, "password", password + " but wrong"), loginTrace);
        ConsumerRecord<String, byte[]> reply = call(login);
        GenericRecord response = responseDecoder.decode(reply.value());
        assertEquals("UNAUTHORIZED", response.get("status").toString(), () -> "wrong password: " + response);

        Event failed = awaitEvent("authworker.LoginFailed", userId);
        assertEvent(failed, "authworker.LoginFailed", userId, requestId(login), loginTrace);
        GenericRecord payload = (GenericRecord) failed.value.get("payload");
        assertEquals("authworker.LoginFailed", payload.getSchema().getFullName(), "payload record");
        assertEquals("BAD_CREDENTIALS", payload.get("reason").toString(), "LoginFailed.reason");
        // auth_event v2 appended reasons, so every LoginFailed carries v2.
        assertEquals("v2.avsc", failed.writerVersion, "writer schema of a LoginFailed event");
    }

    // ---- the events topic ------------------------------------------------------

    /** An event as read: the Kafka record, its decoded value and writer version. */
    private record Event(ConsumerRecord<String, byte[]> record, GenericRecord value, String writerVersion) {
        String header(String key) {
            Header h = record.headers().lastHeader(key);
            return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
        }
    }

    /**
     * Reads the events topic from the beginning of every partition, with a
     * consumer of its own (manual assignment, no group), until a record with
     * this ce_type and ce_subject arrives; fails after EVENT_TIMEOUT. Only
     * the headers are looked at to find it, as a router would; that record
     * is then decoded.
     */
    private Event awaitEvent(String type, String subject) throws IOException {
        Map<String, Object> props = new HashMap<>();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        long deadline = System.nanoTime() + EVENT_TIMEOUT.toNanos();
        int seen = 0;
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            while (partitions.isEmpty()) {
                List<PartitionInfo> infos = consumer.partitionsFor(eventsTopic, Duration.ofSeconds(5));
                if (infos != null) {
                    infos.forEach(p -> partitions.add(new TopicPartition(p.topic(), p.partition())));
                }
                if (partitions.isEmpty() && System.nanoTime() > deadline) {
                    fail("events topic " + eventsTopic + " has no partitions");
                }
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    seen++;
                    if (type.equals(text(r.headers(), "ce_type")) && subject.equals(text(r.headers(), "ce_subject"))) {
                        Event ev = decode(r);
                        log.info("event {}-{}@{} key={} writer={} headers {} value {}", r.topic(), r.partition(),
                                r.offset(), r.key(), ev.writerVersion, describe(r.headers()), ev.value);
                        return ev;
                    }
                }
            }
        }
        return fail("no " + type + " event for subject " + subject + " on " + eventsTopic + " within "
                + EVENT_TIMEOUT.toSeconds() + " s (" + seen + " records read)");
    }

    /** The single-object header names a published version; Avro resolves it to the current schema. */
    private Event decode(ConsumerRecord<String, byte[]> r) throws IOException {
        byte[] v = r.value();
        assertNotNull(v, "event has no value");
        assertTrue(v.length > 10 && (v[0] & 0xff) == 0xC3 && v[1] == 0x01,
                () -> "event is not Avro single-object encoded: " + HexFormat.of().formatHex(v, 0, Math.min(v.length, 16)));
        long fingerprint = ByteBuffer.wrap(v, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String version = eventVersions.get(fingerprint);
        assertNotNull(version, () -> "writer fingerprint " + Long.toHexString(fingerprint)
                + " is none of the published auth_event versions " + eventVersions);
        GenericRecord value = eventDecoder.decode(v);
        assertEquals(eventSchema, value.getSchema(), "resolved to the current auth_event schema");
        return new Event(r, value, version);
    }

    /** The headers agree with the value, the request and the worker's configuration. */
    private void assertEvent(Event ev, String type, String userId, String requestId, String traceparent) {
        Headers headers = ev.record.headers();
        for (String key : SINGLE_HEADERS) {
            int n = 0;
            for (Iterator<Header> it = headers.headers(key).iterator(); it.hasNext(); it.next()) {
                n++;
            }
            assertTrue(n <= 1, key + " appears " + n + " times");
        }
        GenericRecord value = ev.value;
        GenericRecord payload = (GenericRecord) value.get("payload");

        assertEquals("1.0", ev.header("ce_specversion"), "ce_specversion");
        assertNotNull(ev.header("ce_id"), "ce_id");
        assertEquals(value.get("eventId").toString(), ev.header("ce_id"), "ce_id is the eventId");
        assertEquals(eventSource, ev.header("ce_source"), "ce_source is the configured AUTH_EVENT_SOURCE");
        assertEquals(type, ev.header("ce_type"), "ce_type");
        assertEquals(type, "authworker." + payload.getSchema().getName(), "ce_type names the payload record");
        assertEquals(userId, ev.header("ce_subject"), "ce_subject");
        assertEquals(userId, String.valueOf(value.get("userId")), "userId is ce_subject and the registered id");
        assertEquals(userId, ev.record.key(), "events are keyed by user id");
        assertEquals("application/avro", ev.header("content-type"), "content-type");
        assertEquals(traceparent, ev.header("traceparent"), "traceparent is the request's");

        String ceTime = ev.header("ce_time");
        assertNotNull(ceTime, "ce_time");
        assertTrue(CE_TIME.matcher(ceTime).matches(), () -> "ce_time is not RFC 3339 UTC with milliseconds: " + ceTime);
        Instant time;
        try {
            time = Instant.parse(ceTime);
        } catch (DateTimeParseException e) {
            throw new AssertionError("ce_time does not parse: " + ceTime, e);
        }
        assertEquals(occurredAt(value), time, "ce_time is occurredAt");
        assertEquals(time.toEpochMilli(), ev.record.timestamp(), "record timestamp is occurredAt");

        assertEquals(requestId, String.valueOf(value.get("requestId")), "requestId is the request's");
        assertEquals(CLIENT_ID, String.valueOf(value.get("clientId")), "clientId");
        assertNull(value.get("ip"), "ip: the requests carry none");
    }

    private static Instant occurredAt(GenericRecord value) {
        Object v = value.get("occurredAt");
        return v instanceof Instant i ? i : Instant.ofEpochMilli((Long) v);
    }

    // ---- requests ----------------------------------------------------------------

    private GenericRecord okResult(ProducerRecord<String, byte[]> request, String resultType) throws Exception {
        ConsumerRecord<String, byte[]> reply = call(request);
        GenericRecord response = responseDecoder.decode(reply.value());
        assertEquals("OK", response.get("status").toString(), () -> "reply: " + response);
        assertEquals(requestId(request), response.get("requestId").toString(), "AuthResponse.requestId");
        GenericRecord result = (GenericRecord) response.get("result");
        assertEquals(resultType, result.getSchema().getFullName());
        return result;
    }

    private ConsumerRecord<String, byte[]> call(ProducerRecord<String, byte[]> request) throws Exception {
        ConsumerRecord<String, byte[]> reply = template.sendAndReceive(request, REPLY_TIMEOUT)
                .get(REPLY_TIMEOUT.toSeconds() + 5, TimeUnit.SECONDS);
        assertNotNull(reply.value(), "reply has no value");
        return reply;
    }

    /** An AuthRequest keyed by the subject's e-mail, with a traceparent header. */
    private ProducerRecord<String, byte[]> request(String key, String operation, Map<String, Object> fields,
            String traceparent) throws IOException {
        Schema opSchema = requestSchema.getField("operation").schema().getTypes().stream()
                .filter(s -> s.getName().equals(operation)).findFirst().orElseThrow();
        GenericRecord op = new GenericData.Record(opSchema);
        fields.forEach(op::put);
        GenericRecord client = new GenericData.Record(requestSchema.getField("client").schema());
        client.put("clientId", CLIENT_ID);
        GenericRecord req = new GenericData.Record(requestSchema);
        req.put("requestId", UUID.randomUUID().toString());
        req.put("client", client);
        req.put("operation", op);
        ByteBuffer buf = requestEncoder.encode(req);
        byte[] value = new byte[buf.remaining()];
        buf.get(value);
        ProducerRecord<String, byte[]> record = new ProducerRecord<>(requestTopic, key, value);
        record.headers().add(new RecordHeader("traceparent", traceparent.getBytes(StandardCharsets.US_ASCII)));
        requestIds.put(record, req.get("requestId").toString());
        return record;
    }

    private String requestId(ProducerRecord<String, byte[]> request) {
        return requestIds.get(request);
    }

    /** A W3C Trace Context traceparent, version 00, sampled, with random non-zero ids. */
    private static String traceparent() {
        byte[] traceId = new byte[16];
        byte[] parentId = new byte[8];
        do {
            RANDOM.nextBytes(traceId);
        } while (Arrays.equals(traceId, new byte[16]));
        do {
            RANDOM.nextBytes(parentId);
        } while (Arrays.equals(parentId, new byte[8]));
        HexFormat hex = HexFormat.of(); // lowercase
        return "00-" + hex.formatHex(traceId) + "-" + hex.formatHex(parentId) + "-01";
    }

    // ---- helpers -------------------------------------------------------------------

    private static String text(Headers headers, String key) {
        Header h = headers.lastHeader(key);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static String describe(Headers headers) {
        Map<String, String> m = new TreeMap<>();
        for (Header h : headers) {
            m.put(h.key(), new String(h.value(), StandardCharsets.UTF_8));
        }
        return m.toString();
    }

    private static File[] history(File dir, String envelope) {
        File[] files = new File(dir, "history/" + envelope).listFiles((d, name) -> name.endsWith(".avsc"));
        assertNotNull(files, "no schema history under " + dir + "/history/" + envelope);
        assertTrue(files.length > 0, "no schema history under " + dir + "/history/" + envelope);
        Arrays.sort(files);
        return files;
    }

    private static Schema parse(File f) throws IOException {
        assertTrue(f.isFile(), () -> "schema not found: " + f.getAbsolutePath());
        return new Schema.Parser().parse(f);
    }

    private static String env(String name, String def) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? def : v;
    }
}
