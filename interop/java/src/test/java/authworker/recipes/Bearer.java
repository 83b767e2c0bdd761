package authworker.recipes;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** GET /me of the resource server at a port, with a bearer token or none. */
final class Bearer {

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private Bearer() {
    }

    static HttpResponse<String> me(int port, String token) throws IOException, InterruptedException {
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/me"))
                .timeout(Duration.ofSeconds(30));
        if (token != null) {
            req.header("Authorization", "Bearer " + token);
        }
        return HTTP.send(req.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The WWW-Authenticate header of a refusal, which says why. */
    static String why(HttpResponse<String> resp) {
        return resp.headers().firstValue("WWW-Authenticate").orElse("(no WWW-Authenticate)");
    }
}
