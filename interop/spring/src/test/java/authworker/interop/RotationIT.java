package authworker.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

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
import org.springframework.security.oauth2.jwt.BadJwtException;
import org.springframework.security.oauth2.jwt.Jwt;
import org.springframework.security.oauth2.jwt.JwtDecoder;
import org.springframework.security.oauth2.jwt.JwtTimestampValidator;
import org.springframework.security.oauth2.jwt.JwtValidationException;
import org.springframework.security.oauth2.jwt.JwtValidators;
import org.springframework.security.oauth2.jwt.NimbusJwtDecoder;

/**
 * Access tokens verified by a JWT library no one here wrote, through key
 * rotations: Spring Security's NimbusJwtDecoder, found by the issuer's
 * discovery document as a Spring resource server finds it, against the
 * rotation worker of scripts/interop.sh (ES256; a key signs for 6 s and is
 * published 2.5 s before; tokens live 4 s). Tokens issued before, during and
 * after two rotations verify on receipt and again just before they expire,
 * and are refused after; a tampered token is refused.
 *
 * <p>Environment: KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092),
 * INTEROP_ROTATION_ISSUER (http://127.0.0.1:18081),
 * INTEROP_ROTATION_REQUEST_TOPIC (auth.request.interop.rotation),
 * INTEROP_ROTATION_RESPONSE_TOPIC (auth.response.interop.rotation). System
 * property authworker.schemas: the folder of the .avsc files.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RotationIT {

    private static final Logger log = LoggerFactory.getLogger(RotationIT.class);
    private static final Duration REPLY_TIMEOUT = Duration.ofSeconds(30);
    /** Bounds the test whatever the machine: two rotations take about 13 s. */
    private static final Duration DEADLINE = Duration.ofSeconds(60);
    private static final Duration PAUSE = Duration.ofMillis(50);
    private static final String CLIENT_ID = "spring-interop";

    private final String bootstrap = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    private final String issuer = env("INTEROP_ROTATION_ISSUER", "http://127.0.0.1:18081");
    private final String requestTopic = env("INTEROP_ROTATION_REQUEST_TOPIC", "auth.request.interop.rotation");
    private final String replyTopic = env("INTEROP_ROTATION_RESPONSE_TOPIC", "auth.response.interop.rotation");

    private Schema requestSchema;
    private BinaryMessageEncoder<GenericRecord> encoder;
    private BinaryMessageDecoder<GenericRecord> decoder;
    private DefaultKafkaProducerFactory<String, byte[]> producerFactory;
    private ReplyingKafkaTemplate<String, byte[], byte[]> template;
    private final String group = "spring-interop-rotation-" + UUID.randomUUID();

    /**
     * The validator's clock: the real one, or, on a thread that checks a
     * token at a given moment, that moment. Under load a scheduled check
     * can run late; it reads the clock once and validates at that reading.
     */
    private final ThreadLocal<Instant> checkAt = new ThreadLocal<>();
    private final Clock checkClock = new Clock() {
        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            Instant at = checkAt.get();
            return at != null ? at : Instant.now();
        }
    };

    @BeforeAll
    void setUp() throws Exception {
        File dir = new File(System.getProperty("authworker.schemas", "../../schemas"));
        requestSchema = new Schema.Parser().parse(new File(dir, "auth_request.avsc"));
        encoder = new BinaryMessageEncoder<>(GenericData.get(), requestSchema);
        decoder = new BinaryMessageDecoder<>(GenericData.get(), new Schema.Parser().parse(new File(dir, "auth_response.avsc")));
        File[] history = new File(dir, "history/auth_response").listFiles((d, name) -> name.endsWith(".avsc"));
        assertNotNull(history, "no schema history under " + dir);
        for (File version : history) {
            decoder.addSchema(new Schema.Parser().parse(version));
        }

        Map<String, Object> producerProps = new HashMap<>();
        producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        producerProps.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        producerProps.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        producerFactory = new DefaultKafkaProducerFactory<>(producerProps);
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
        template.start();
        assertTrue(template.waitForAssignment(Duration.ofSeconds(30)), "reply container got no partitions within 30 s");
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
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.deleteConsumerGroups(List.of(group)).all().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            log.warn("could not delete consumer group {}: {}", group, e.toString());
        }
    }

    /**
     * The decoder a Spring resource server builds from the issuer, with the
     * RFC 9068 validator of Spring Security 7: typ at+jwt, iss, aud, and
     * client_id, which it requires to be checked (here: the tokens were
     * asked for by this client); and no clock skew, so that "refused after
     * expiry" means at expiry, not a minute later (the default skew).
     */
    private JwtDecoder springDecoder() {
        NimbusJwtDecoder decoder = NimbusJwtDecoder.withIssuerLocation(issuer).build();
        JwtTimestampValidator noSkew = new JwtTimestampValidator(Duration.ZERO);
        noSkew.setAllowEmptyExpiryClaim(false);
        noSkew.setClock(checkClock);
        decoder.setJwtValidator(JwtValidators.createAtJwtValidator().issuer(issuer).audience("api").clientId(CLIENT_ID)
                .validators(v -> assertNotNull(v.put("exp", noSkew), "the RFC 9068 validator checks exp"))
                .build());
        return decoder;
    }

    @Test
    void tokensVerifyThroughRotationsUntilTheyExpireNeverAfter() throws Exception {
        JwtDecoder jwt = springDecoder();
        String email = "spring-rotation-" + UUID.randomUUID() + "@example.com";
        String password = "interop " + UUID.randomUUID();
        assertEquals("authworker.RegisterResult", ok(email, "Register", Map.of("email", email, "password", password)).getSchema().getFullName());
        String refreshToken = ok(email, "Login", Map.of("email", email, "password", password)).get("refreshToken").toString();

        ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        AtomicInteger late = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        ScheduledExecutorService checks = Executors.newScheduledThreadPool(2);
        Map<String, Instant> firstSeen = new LinkedHashMap<>(); // kid -> first token
        List<String> issued = new ArrayList<>();
        Instant deadline = Instant.now().plus(DEADLINE);

        while (!twoRotations(firstSeen)) {
            if (Instant.now().isAfter(deadline)) {
                fail("no two rotations within " + DEADLINE + ": kids seen " + firstSeen.keySet());
            }
            GenericRecord pair = ok(email, "Refresh", Map.of("refreshToken", refreshToken));
            refreshToken = pair.get("refreshToken").toString();
            String token = pair.get("accessToken").toString();
            issued.add(token);

            Jwt decoded;
            try {
                decoded = jwt.decode(token);
            } catch (RuntimeException e) {
                fail("a fresh token is refused: " + e + " (kids so far " + firstSeen.keySet() + ")");
                return;
            }
            assertEquals("ES256", decoded.getHeaders().get("alg").toString(), "alg");
            String kid = decoded.getHeaders().get("kid").toString();
            firstSeen.putIfAbsent(kid, Instant.now());
            Instant exp = decoded.getExpiresAt();
            assertNotNull(exp, "exp");

            // Just before it expires, it still verifies: its key is still
            // published, whatever took over since.
            checks.schedule(() -> {
                Instant at = Instant.now();
                if (at.isBefore(exp)) {
                    checkAt.set(at);
                    try {
                        jwt.decode(token);
                        late.incrementAndGet();
                    } catch (RuntimeException e) {
                        failures.add("kid " + kid + " refused at " + at + ", before its expiry: " + e);
                    } finally {
                        checkAt.remove();
                    }
                }
            }, Math.max(0, Duration.between(Instant.now(), exp).toMillis() - 400), TimeUnit.MILLISECONDS);
            // After it, it is refused by the claims' validation (the
            // signature still holds: its key is still published).
            checks.schedule(() -> {
                try {
                    jwt.decode(token);
                    failures.add("kid " + kid + " verified after its expiry " + exp);
                } catch (JwtValidationException e) {
                    refused.incrementAndGet();
                } catch (RuntimeException e) {
                    failures.add("kid " + kid + " after its expiry refused for another reason: " + e);
                }
            }, Duration.between(Instant.now(), exp).toMillis() + 200, TimeUnit.MILLISECONDS);
            Thread.sleep(PAUSE.toMillis());
        }

        String tampered = tamper(issued.get(issued.size() - 1));
        assertThrows(BadJwtException.class, () -> jwt.decode(tampered), "a tampered token");

        checks.shutdown(); // the scheduled checks still run
        assertTrue(checks.awaitTermination(30, TimeUnit.SECONDS), "the expiry checks did not finish");
        assertTrue(failures.isEmpty(), () -> failures.size() + " failures, the first: " + failures.peek());
        assertEquals(issued.size(), refused.get(), "tokens refused after their expiry");
        assertTrue(firstSeen.size() >= 3, "kids " + firstSeen.keySet());
        log.info("NimbusJwtDecoder through {} keys (two rotations): {} tokens verified on receipt, {} again in the last 400 ms of their life, {} refused after expiry, a tampered one refused",
                firstSeen.size(), issued.size(), late.get(), refused.get());
    }

    /** Three keys have signed, the third for a second. */
    private static boolean twoRotations(Map<String, Instant> firstSeen) {
        List<Instant> starts = new ArrayList<>(firstSeen.values());
        return starts.size() >= 3 && Duration.between(starts.get(2), Instant.now()).compareTo(Duration.ofSeconds(1)) > 0;
    }

    /** The token with one claim changed and its signature kept. */
    private static String tamper(String token) {
        String[] parts = token.split("\\.");
        String payload = new String(Base64.getUrlDecoder().decode(parts[1]), StandardCharsets.UTF_8);
        String changed = payload.replaceFirst("\"client_id\":\"", "\"client_id\":\"x");
        assertTrue(!changed.equals(payload), "token has no client_id to tamper with");
        parts[1] = Base64.getUrlEncoder().withoutPadding().encodeToString(changed.getBytes(StandardCharsets.UTF_8));
        return String.join(".", parts);
    }

    /** Sends an operation keyed by key and returns its result, which must be OK. */
    private GenericRecord ok(String key, String operation, Map<String, Object> fields) throws Exception {
        ConsumerRecord<String, byte[]> reply = template.sendAndReceive(request(key, operation, fields), REPLY_TIMEOUT)
                .get(REPLY_TIMEOUT.toSeconds() + 5, TimeUnit.SECONDS);
        GenericRecord response = decoder.decode(reply.value());
        assertEquals("OK", response.get("status").toString(), () -> operation + ": " + response);
        return (GenericRecord) response.get("result");
    }

    private ProducerRecord<String, byte[]> request(String key, String operation, Map<String, Object> fields) throws IOException {
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
        ByteBuffer buf = encoder.encode(req);
        byte[] value = new byte[buf.remaining()];
        buf.get(value);
        return new ProducerRecord<>(requestTopic, key, value);
    }

    private static String env(String name, String def) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? def : v;
    }
}
