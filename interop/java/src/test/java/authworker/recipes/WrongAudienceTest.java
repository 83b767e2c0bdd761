package authworker.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;

/** The recipe deployed as another service: the worker's tokens are not for it. */
@SpringBootTest(webEnvironment = WebEnvironment.RANDOM_PORT,
        properties = "spring.security.oauth2.resourceserver.jwt.audiences=some-other-service")
class WrongAudienceTest {

    @Value("${local.server.port}")
    int port;

    @Test
    void rejectsATokenForAnotherAudience() throws Exception {
        String token = Interop.mint();
        HttpResponse<String> resp = Bearer.me(port, token);
        assertEquals(401, resp.statusCode(), () -> Interop.redact(token) + ": " + Bearer.why(resp));
        assertTrue(Bearer.why(resp).contains("aud"), () -> "refused, but not for its aud: " + Bearer.why(resp));
    }
}
