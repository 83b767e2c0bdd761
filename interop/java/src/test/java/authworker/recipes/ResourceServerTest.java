package authworker.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;

/**
 * The resource server exactly as the recipe configures it (application.yml:
 * issuer-uri, so discovery; audiences; AccessTokenValidation), on a real
 * port, called with "Authorization: Bearer".
 */
@SpringBootTest(webEnvironment = WebEnvironment.RANDOM_PORT)
class ResourceServerTest {

    @Value("${local.server.port}")
    int port;

    @Test
    void acceptsAGenuineToken() throws Exception {
        String token = Interop.mint();
        HttpResponse<String> resp = Bearer.me(port, token);
        assertEquals(200, resp.statusCode(), () -> Interop.redact(token) + " refused: " + Bearer.why(resp));
        assertEquals(Interop.subject(token), resp.body(), "the principal's subject");
    }

    @Test
    void rejectsATamperedToken() throws Exception {
        assertRefused(Interop.tampered(Interop.mint()), "signature");
    }

    @Test
    void rejectsAnUnsignedToken() throws Exception {
        assertRefused(Interop.unsigned(Interop.mint()), "invalid_token");
    }

    @Test
    void rejectsAnExpiredToken() throws Exception {
        assertRefused(Interop.expired(), "expired");
    }

    @Test
    void rejectsNoToken() throws Exception {
        HttpResponse<String> resp = Bearer.me(port, null);
        assertEquals(401, resp.statusCode(), "without a token");
    }

    private void assertRefused(String token, String reason) throws Exception {
        HttpResponse<String> resp = Bearer.me(port, token);
        assertEquals(401, resp.statusCode(), () -> Interop.redact(token) + ": " + Bearer.why(resp));
        assertTrue(Bearer.why(resp).contains(reason), () -> "refused, but not for \"" + reason + "\": " + Bearer.why(resp));
    }
}
