package authworker.interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.listener.ConcurrentMessageListenerContainer;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.requestreply.ReplyingKafkaTemplate;
import org.springframework.kafka.requestreply.RequestReplyFuture;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.kafka.support.TopicPartitionOffset;

/**
 * Proves the README's claim "a Spring ReplyingKafkaTemplate calls the worker
 * unchanged": a plain {@code ReplyingKafkaTemplate<String, byte[], byte[]>},
 * values in Avro single-object encoding made by Avro's own
 * BinaryMessageEncoder from the repository's schemas, against a running
 * worker and broker.
 *
 * <p>Environment: KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092), AUTH_REQUEST_TOPIC
 * (auth.request), AUTH_RESPONSE_TOPIC (auth.response; must be one of the
 * worker's AUTH_REPLY_TOPICS). System property authworker.schemas: the folder
 * of the .avsc files (set by the pom to ../../schemas).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SpringReplyingTemplateIT {

    private static final Logger log = LoggerFactory.getLogger(SpringReplyingTemplateIT.class);
    private static final Duration REPLY_TIMEOUT = Duration.ofSeconds(30);
    private static final String CLIENT_ID = "spring-interop";

    private final String bootstrap = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    private final String requestTopic = env("AUTH_REQUEST_TOPIC", "auth.request");
    private final String replyTopic = env("AUTH_RESPONSE_TOPIC", "auth.response");

    private Schema requestSchema;
    private Schema responseSchema;
    private BinaryMessageEncoder<GenericRecord> encoder;
    private BinaryMessageDecoder<GenericRecord> decoder;

    private DefaultKafkaProducerFactory<String, byte[]> producerFactory;
    private final List<ReplyingKafkaTemplate<String, byte[], byte[]>> templates = new ArrayList<>();
    private final List<String> groups = new ArrayList<>();
    private ReplyingKafkaTemplate<String, byte[], byte[]> template;

    // Shared by the ordered tests: the account registered first.
    private final String email = "spring-interop-" + UUID.randomUUID() + "@example.com";
    private final String password = "interop " + UUID.randomUUID(); // 44 characters
    private String userId;
    // A second account, for the reply-partition tests, and the partition
    // its replies go to when the request names none.
    private final String other = "spring-interop-" + UUID.randomUUID() + "@example.com";
    private int naturalPartition = -1;
    // The requestId of each request sent, for assertCorrelated.
    private final Map<ProducerRecord<String, byte[]>, String> requestIds = new IdentityHashMap<>();

    @BeforeAll
    void setUp() throws Exception {
        File dir = new File(System.getProperty("authworker.schemas", "../../schemas"));
        requestSchema = parse(new File(dir, "auth_request.avsc"));
        responseSchema = parse(new File(dir, "auth_response.avsc"));
        encoder = new BinaryMessageEncoder<>(GenericData.get(), requestSchema);
        decoder = new BinaryMessageDecoder<>(GenericData.get(), responseSchema);
        // The worker writes each reply with the oldest published schema that
        // carries it, so a client registers every version (README).
        File[] history = new File(dir, "history/auth_response").listFiles((d, name) -> name.endsWith(".avsc"));
        assertNotNull(history, "no schema history under " + dir);
        for (File version : history) {
            decoder.addSchema(parse(version));
        }

        Map<String, Object> producerProps = new HashMap<>();
        producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        producerProps.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        producerProps.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        producerFactory = new DefaultKafkaProducerFactory<>(producerProps);

        // The usual setup: a reply container subscribed to the reply topic
        // with its own group; the template takes kafka_replyTopic from it.
        template = startTemplate(new ContainerProperties(replyTopic));
        log.info("Spring ReplyingKafkaTemplate ready: bootstrap={} request={} reply={}", bootstrap, requestTopic, replyTopic);
    }

    @AfterAll
    void tearDown() {
        for (ReplyingKafkaTemplate<String, byte[], byte[]> t : templates) {
            t.stop();
            t.destroy();
        }
        if (producerFactory != null) {
            producerFactory.destroy();
        }
        // Leave no consumer groups behind on the broker.
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.deleteConsumerGroups(groups).all().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            log.warn("could not delete consumer groups {}: {}", groups, e.toString());
        }
    }

    @Test
    @Order(1)
    void registerReturnsUserId() throws Exception {
        ProducerRecord<String, byte[]> request = request(email, "Register", email, password);
        ConsumerRecord<String, byte[]> reply = call(template, request);
        GenericRecord response = decode(reply);

        assertEquals("OK", response.get("status").toString(), () -> "register: " + response);
        GenericRecord result = (GenericRecord) response.get("result");
        assertEquals("authworker.RegisterResult", result.getSchema().getFullName());
        userId = result.get("userId").toString();
        assertFalse(userId.isBlank(), "userId");
        assertNull(reply.headers().lastHeader("auth_error"), "auth_error header on a success");
        assertCorrelated(request, reply, response);
    }

    @Test
    @Order(2)
    void loginReturnsTokens() throws Exception {
        assertNotNull(userId, "registration (test 1) did not succeed");
        ProducerRecord<String, byte[]> request = request(email, "Login", email, password);
        ConsumerRecord<String, byte[]> reply = call(template, request);
        GenericRecord response = decode(reply);

        assertEquals("OK", response.get("status").toString(), () -> "login: " + response);
        GenericRecord result = (GenericRecord) response.get("result");
        assertEquals("authworker.LoginResult", result.getSchema().getFullName());
        assertEquals(userId, result.get("userId").toString(), "LoginResult.userId");
        String accessToken = result.get("accessToken").toString();
        assertEquals(3, accessToken.split("\\.", -1).length, "access token is a JWT (header.payload.signature)");
        for (String part : accessToken.split("\\.")) {
            assertFalse(part.isEmpty(), "empty JWT part");
        }
        assertFalse(result.get("refreshToken").toString().isEmpty(), "refreshToken");
        assertFalse(result.get("sessionId").toString().isEmpty(), "sessionId");
        assertTrue((Long) result.get("accessTokenExpiresAt") > System.currentTimeMillis(), "accessTokenExpiresAt");
        assertNull(reply.headers().lastHeader("auth_error"), "auth_error header on a success");
        assertCorrelated(request, reply, response);
    }

    @Test
    @Order(3)
    void wrongPasswordIsUnauthorizedWithErrorHeader() throws Exception {
        assertNotNull(userId, "registration (test 1) did not succeed");
        ProducerRecord<String, byte[]> request = request(email, "Login", email, password + " but wrong");
        ConsumerRecord<String, byte[]> reply = call(template, request);
        GenericRecord response = decode(reply);

        assertEquals("UNAUTHORIZED", response.get("status").toString(), () -> "wrong password: " + response);
        GenericRecord result = (GenericRecord) response.get("result");
        assertEquals("authworker.Error", result.getSchema().getFullName());
        assertFalse(result.get("message").toString().isEmpty(), "Error.message");
        Header error = reply.headers().lastHeader("auth_error");
        assertNotNull(error, "auth_error header missing on an error reply");
        assertEquals("unauthorized", new String(error.value(), StandardCharsets.UTF_8));
        assertCorrelated(request, reply, response);
    }

    /**
     * kafka_replyPartition put on the ProducerRecord (the template adds
     * kafka_replyTopic itself). A first request without it shows where the
     * worker puts this key's replies by itself; the steered reply must land
     * on another partition, the one asked for.
     */
    @Test
    @Order(4)
    void replyPartitionHeaderOnTheRecordIsHonoured() throws Exception {
        int n = replyPartitions();
        ProducerRecord<String, byte[]> control = request(other, "Register", other, password);
        ConsumerRecord<String, byte[]> first = call(template, control);
        assertEquals("OK", decode(first).get("status").toString(), () -> "register: " + safeDecode(first));
        naturalPartition = first.partition();

        int partition = (naturalPartition + 1) % n;
        ProducerRecord<String, byte[]> request = request(other, "Login", other, password);
        request.headers().add(new RecordHeader(KafkaHeaders.REPLY_PARTITION, ByteBuffer.allocate(4).putInt(partition).array()));
        ConsumerRecord<String, byte[]> reply = call(template, request);
        GenericRecord response = decode(reply);
        assertEquals("OK", response.get("status").toString(), () -> "login: " + response);
        assertEquals(replyTopic, reply.topic());
        assertEquals(partition, reply.partition(), "reply partition (unsteered replies for this key go to " + naturalPartition + ")");
        assertCorrelated(request, reply, response);
    }

    /**
     * A reply container assigned one partition explicitly: the template then
     * writes both kafka_replyTopic and kafka_replyPartition itself, and only
     * listens there, so a reply anywhere else would time out.
     */
    @Test
    @Order(5)
    void templateWithAnAssignedReplyPartitionGetsItsReplies() throws Exception {
        assertTrue(naturalPartition >= 0, "test 4 did not run");
        int partition = (naturalPartition + 2) % replyPartitions();
        ReplyingKafkaTemplate<String, byte[], byte[]> pinned =
                startTemplate(new ContainerProperties(new TopicPartitionOffset(replyTopic, partition)));
        ProducerRecord<String, byte[]> request = request(other, "Login", other, password);

        ConsumerRecord<String, byte[]> reply = call(pinned, request);
        GenericRecord response = decode(reply);
        Header sent = request.headers().lastHeader(KafkaHeaders.REPLY_PARTITION);
        assertNotNull(sent, "template did not set kafka_replyPartition");
        assertArrayEquals(ByteBuffer.allocate(4).putInt(partition).array(), sent.value());
        assertEquals("OK", response.get("status").toString(), () -> "login: " + response);
        assertEquals(partition, reply.partition(), "reply partition");
        assertCorrelated(request, reply, response);
    }

    /** Several requests in flight at once: each future gets its own reply. */
    @Test
    @Order(6)
    void concurrentRequestsAreMatchedByCorrelationId() throws Exception {
        assertNotNull(userId, "registration (test 1) did not succeed");
        List<ProducerRecord<String, byte[]>> requests = new ArrayList<>();
        List<RequestReplyFuture<String, byte[], byte[]>> futures = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            String who = i % 2 == 0 ? email : "spring-interop-" + UUID.randomUUID() + "@example.com";
            ProducerRecord<String, byte[]> request = i % 2 == 0
                    ? request(who, "Login", who, password)
                    : request(who, "Register", who, password);
            requests.add(request);
            futures.add(template.sendAndReceive(request, REPLY_TIMEOUT));
        }
        for (int i = 0; i < requests.size(); i++) {
            ConsumerRecord<String, byte[]> reply = futures.get(i).get(REPLY_TIMEOUT.toSeconds() + 5, TimeUnit.SECONDS);
            GenericRecord response = decode(reply);
            assertEquals("OK", response.get("status").toString(), () -> "concurrent: " + response);
            String expected = i % 2 == 0 ? "authworker.LoginResult" : "authworker.RegisterResult";
            assertEquals(expected, ((GenericRecord) response.get("result")).getSchema().getFullName());
            assertCorrelated(requests.get(i), reply, response);
        }
    }

    /**
     * Refresh rotates the refresh token: a new pair for the same session,
     * and the old refresh token spent (presenting it again is refused).
     */
    @Test
    @Order(7)
    void refreshRotatesTheTokens() throws Exception {
        GenericRecord first = okResult(request(email, "Login", email, password), "authworker.LoginResult");
        String refreshToken = first.get("refreshToken").toString();

        GenericRecord next = okResult(request(email, "Refresh", Map.of("refreshToken", refreshToken)), "authworker.LoginResult");
        assertEquals(first.get("sessionId").toString(), next.get("sessionId").toString(), "same session");
        assertNotEquals(refreshToken, next.get("refreshToken").toString(), "a new refresh token");
        assertNotEquals(first.get("accessToken").toString(), next.get("accessToken").toString(), "a new access token");

        ProducerRecord<String, byte[]> again = request(email, "Refresh", Map.of("refreshToken", refreshToken));
        ConsumerRecord<String, byte[]> reply = call(template, again);
        GenericRecord response = decode(reply);
        assertEquals("UNAUTHORIZED", response.get("status").toString(), () -> "spent refresh token: " + response);
        assertCorrelated(again, reply, response);
    }

    /**
     * Introspect (RFC 7662): an access token is active with its claims until
     * its session is logged out, then inactive with nothing else.
     */
    @Test
    @Order(8)
    void introspectFollowsTheSession() throws Exception {
        GenericRecord login = okResult(request(email, "Login", email, password), "authworker.LoginResult");
        String accessToken = login.get("accessToken").toString();

        GenericRecord active = okResult(request(email, "Introspect", Map.of("token", accessToken)), "authworker.IntrospectResult");
        assertEquals(Boolean.TRUE, active.get("active"), () -> "introspect: " + active);
        assertEquals(userId, active.get("sub").toString(), "sub");
        assertEquals(login.get("sessionId").toString(), active.get("sid").toString(), "sid");
        assertEquals(CLIENT_ID, active.get("clientId").toString(), "clientId");
        assertEquals("access_token", active.get("tokenType").toString(), "tokenType");

        okResult(request(email, "Logout", Map.of("accessToken", accessToken)), "authworker.Done");

        GenericRecord inactive = okResult(request(email, "Introspect", Map.of("token", accessToken)), "authworker.IntrospectResult");
        assertEquals(Boolean.FALSE, inactive.get("active"), () -> "after logout: " + inactive);
        assertNull(inactive.get("sub"), "an inactive token's reply carries no claims");

        GenericRecord garbage = okResult(request(email, "Introspect", Map.of("token", "not.a.token")), "authworker.IntrospectResult");
        assertEquals(Boolean.FALSE, garbage.get("active"), "garbage is inactive");
    }

    /** Sends request, checks it is answered OK and correlated, returns the result. */
    private GenericRecord okResult(ProducerRecord<String, byte[]> request, String resultType) throws Exception {
        ConsumerRecord<String, byte[]> reply = call(template, request);
        GenericRecord response = decode(reply);
        assertEquals("OK", response.get("status").toString(), () -> "reply: " + response);
        GenericRecord result = (GenericRecord) response.get("result");
        assertEquals(resultType, result.getSchema().getFullName());
        assertCorrelated(request, reply, response);
        return result;
    }

    // ---- helpers -------------------------------------------------------------

    private ReplyingKafkaTemplate<String, byte[], byte[]> startTemplate(ContainerProperties containerProps)
            throws InterruptedException {
        String group = "spring-interop-" + UUID.randomUUID();
        groups.add(group);
        Map<String, Object> consumerProps = new HashMap<>();
        consumerProps.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        consumerProps.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        consumerProps.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        consumerProps.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        consumerProps.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        ConcurrentMessageListenerContainer<String, byte[]> container =
                new ConcurrentMessageListenerContainer<>(new DefaultKafkaConsumerFactory<>(consumerProps), containerProps);
        container.setBeanName("reply-" + group);
        ReplyingKafkaTemplate<String, byte[], byte[]> t = new ReplyingKafkaTemplate<>(producerFactory, container);
        t.setDefaultReplyTimeout(REPLY_TIMEOUT);
        t.setDefaultTopic(requestTopic);
        // Two templates (tests 1-4 and 6, test 5) read the same reply topic:
        // each sees the other's replies, which is expected, not an error.
        t.setSharedReplyTopic(true);
        templates.add(t);
        t.start();
        // Replies produced before the reply consumer has its position would
        // be skipped ("latest"), so wait for the assignment first.
        assertTrue(t.waitForAssignment(Duration.ofSeconds(30)), "reply container got no partitions within 30 s");
        return t;
    }

    private int replyPartitions() {
        int n = template.partitionsFor(replyTopic).size();
        assertTrue(n >= 3, "reply topic " + replyTopic + " has " + n + " partition(s); 3+ are needed to check kafka_replyPartition");
        return n;
    }

    /** An AuthRequest keyed by the subject's e-mail, as the contract asks. */
    private ProducerRecord<String, byte[]> request(String key, String operation, String email, String password)
            throws IOException {
        return request(key, operation, Map.of("email", email, "password", password));
    }

    /** An AuthRequest of any operation: fields not given are null. */
    private ProducerRecord<String, byte[]> request(String key, String operation, Map<String, Object> fields)
            throws IOException {
        Schema opSchema = requestSchema.getField("operation").schema().getTypes().stream()
                .filter(s -> s.getName().equals(operation)).findFirst().orElseThrow();
        GenericRecord op = new GenericData.Record(opSchema);
        fields.forEach(op::put);

        GenericRecord client = new GenericData.Record(requestSchema.getField("client").schema());
        client.put("clientId", CLIENT_ID);
        client.put("ip", null);
        client.put("userAgent", null);

        GenericRecord req = new GenericData.Record(requestSchema);
        req.put("requestId", UUID.randomUUID().toString());
        req.put("deadline", null);
        req.put("client", client);
        req.put("operation", op);

        ByteBuffer buf = encoder.encode(req);
        byte[] value = new byte[buf.remaining()];
        buf.get(value);
        ProducerRecord<String, byte[]> record = new ProducerRecord<>(requestTopic, key, value);
        requestIds.put(record, req.get("requestId").toString());
        return record;
    }

    private static ConsumerRecord<String, byte[]> call(ReplyingKafkaTemplate<String, byte[], byte[]> t,
            ProducerRecord<String, byte[]> request) throws Exception {
        RequestReplyFuture<String, byte[], byte[]> future = t.sendAndReceive(request, REPLY_TIMEOUT);
        ConsumerRecord<String, byte[]> reply = future.get(REPLY_TIMEOUT.toSeconds() + 5, TimeUnit.SECONDS);
        log.info("reply {}-{}@{} headers {}", reply.topic(), reply.partition(), reply.offset(), describe(reply.headers()));
        return reply;
    }

    private GenericRecord decode(ConsumerRecord<String, byte[]> reply) throws IOException {
        byte[] v = reply.value();
        assertNotNull(v, "reply has no value");
        assertTrue(v.length > 10 && (v[0] & 0xff) == 0xC3 && v[1] == 0x01,
                () -> "reply is not Avro single-object encoded: " + HexFormat.of().formatHex(v, 0, Math.min(v.length, 16)));
        return decoder.decode(v);
    }

    private String safeDecode(ConsumerRecord<String, byte[]> reply) {
        try {
            return String.valueOf(decode(reply));
        } catch (Exception | AssertionError e) {
            return e.toString();
        }
    }

    /** The reply answers this request: same correlation bytes, requestId and key. */
    private void assertCorrelated(ProducerRecord<String, byte[]> request, ConsumerRecord<String, byte[]> reply,
            GenericRecord response) {
        Header sent = request.headers().lastHeader(KafkaHeaders.CORRELATION_ID);
        Header got = reply.headers().lastHeader(KafkaHeaders.CORRELATION_ID);
        assertNotNull(sent, "template set no kafka_correlationId");
        assertNotNull(got, "reply has no kafka_correlationId");
        assertArrayEquals(sent.value(), got.value(), "kafka_correlationId copied byte for byte");
        assertEquals(requestIds.get(request), response.get("requestId").toString(), "AuthResponse.requestId");
        assertEquals(request.key(), reply.key(), "reply key is the request key");
    }

    private static String describe(Headers headers) {
        StringBuilder sb = new StringBuilder("[");
        for (Header h : headers) {
            if (sb.length() > 1) {
                sb.append(", ");
            }
            String v = h.key().equals("auth_error") ? new String(h.value(), StandardCharsets.UTF_8)
                    : HexFormat.of().formatHex(h.value());
            sb.append(h.key()).append('=').append(v);
        }
        return sb.append(']').toString();
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
