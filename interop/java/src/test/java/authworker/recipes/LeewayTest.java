package authworker.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.http.HttpResponse;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;

/**
 * The expired token that ResourceServerTest sees refused is refused for its
 * time alone: with an hour of leeway the same recipe takes it.
 */
@SpringBootTest(webEnvironment = WebEnvironment.RANDOM_PORT, properties = "authworker.token-leeway=1h")
class LeewayTest {

    @Value("${local.server.port}")
    int port;

    @Test
    void acceptsAnExpiredTokenWithinTheLeeway() throws Exception {
        String token = Interop.expired();
        HttpResponse<String> resp = Bearer.me(port, token);
        assertEquals(200, resp.statusCode(), () -> Interop.redact(token) + " refused: " + Bearer.why(resp));
    }
}
