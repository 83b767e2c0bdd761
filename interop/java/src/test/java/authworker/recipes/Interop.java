package authworker.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.TimeUnit;

import com.nimbusds.jwt.SignedJWT;

/**
 * What scripts/interop.sh hands every recipe test, and the tokens made from
 * it. The environment:
 *
 * <ul>
 * <li>INTEROP_ISSUER, INTEROP_JWKS_URI, INTEROP_AUDIENCE: the worker's;</li>
 * <li>INTEROP_CLIENT_ID, INTEROP_ALG: the client the tokens are asked for
 * under, and the algorithm the worker signs them with for it;</li>
 * <li>INTEROP_MINT: a command that prints a fresh access token for that
 * client (bin/authctl login);</li>
 * <li>INTEROP_EXPIRED_TOKEN_FILE: a token of that client that expired more
 * than INTEROP_LEEWAY_SECONDS ago, the leeway the tests give the
 * verifiers.</li>
 * </ul>
 */
final class Interop {

    private Interop() {
    }

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isBlank()) {
            fail(name + " is not set: run the recipes through `make interop` (scripts/interop.sh)");
        }
        return v;
    }

    static Duration leeway() {
        return Duration.ofSeconds(Long.parseLong(env("INTEROP_LEEWAY_SECONDS")));
    }

    /** A fresh access token, signed with the pair's algorithm. */
    static String mint() throws IOException, InterruptedException {
        Process p = new ProcessBuilder(env("INTEROP_MINT")).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "INTEROP_MINT did not finish");
        assertEquals(0, p.exitValue(), "INTEROP_MINT failed");
        assertEquals(env("INTEROP_ALG"), alg(out), "alg of a token minted for " + env("INTEROP_CLIENT_ID"));
        return out;
    }

    static String expired() throws IOException {
        return Files.readString(Path.of(env("INTEROP_EXPIRED_TOKEN_FILE"))).trim();
    }

    static String alg(String token) {
        try {
            return SignedJWT.parse(token).getHeader().getAlgorithm().getName();
        } catch (java.text.ParseException e) {
            throw new AssertionError("not a signed JWT: " + redact(token), e);
        }
    }

    static String subject(String token) {
        try {
            return SignedJWT.parse(token).getJWTClaimsSet().getSubject();
        } catch (java.text.ParseException e) {
            throw new AssertionError("not a signed JWT: " + redact(token), e);
        }
    }

    /** The token with one claim changed and its signature kept. */
    static String tampered(String token) {
        String[] parts = token.split("\\.");
        String payload = new String(Base64.getUrlDecoder().decode(parts[1]), StandardCharsets.UTF_8);
        String changed = payload.replaceFirst("\"sub\":\"", "\"sub\":\"x");
        assertNotEquals(payload, changed, "the token has no sub to change");
        return parts[0] + "." + b64(changed) + "." + parts[2];
    }

    /** The token's claims, unsigned: header alg none (kid kept), no signature. */
    static String unsigned(String token) {
        String kid;
        try {
            kid = SignedJWT.parse(token).getHeader().getKeyID();
        } catch (java.text.ParseException e) {
            throw new AssertionError("not a signed JWT: " + redact(token), e);
        }
        return b64("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"" + kid + "\"}") + "." + token.split("\\.")[1] + ".";
    }

    /** Enough of a token to tell it apart in a failure, not to use it. */
    static String redact(String token) {
        return token.length() <= 12 ? "<short token>" : token.substring(0, 12) + "...";
    }

    private static String b64(String s) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }
}
