package authworker.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.http.HttpResponse;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;

/**
 * The recipe's other setup, application.yml's comment: the keys at
 * jwk-set-uri with jws-algorithms, no discovery (the issuer is still
 * checked).
 */
@SpringBootTest(webEnvironment = WebEnvironment.RANDOM_PORT, properties = {
        "spring.security.oauth2.resourceserver.jwt.jwk-set-uri=${INTEROP_JWKS_URI}",
        "spring.security.oauth2.resourceserver.jwt.jws-algorithms=${INTEROP_ALG}" })
class JwkSetUriTest {

    @Value("${local.server.port}")
    int port;

    @Test
    void acceptsAGenuineToken() throws Exception {
        String token = Interop.mint();
        HttpResponse<String> resp = Bearer.me(port, token);
        assertEquals(200, resp.statusCode(), () -> Interop.redact(token) + " refused: " + Bearer.why(resp));
    }

    @Test
    void rejectsATamperedToken() throws Exception {
        String token = Interop.tampered(Interop.mint());
        HttpResponse<String> resp = Bearer.me(port, token);
        assertEquals(401, resp.statusCode(), () -> Interop.redact(token) + ": " + Bearer.why(resp));
    }
}
