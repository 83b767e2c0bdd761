package authworker.recipes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.time.Duration;

import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jwt.proc.BadJWTException;
import org.junit.jupiter.api.Test;

/** The plain Nimbus recipe against the worker's JWKS. */
class NimbusAccessTokenVerifierTest {

    private static NimbusAccessTokenVerifier verifier(String audience, Duration leeway) throws Exception {
        return new NimbusAccessTokenVerifier(URI.create(Interop.env("INTEROP_JWKS_URI")).toURL(),
                Interop.env("INTEROP_ISSUER"), audience, leeway);
    }

    private static NimbusAccessTokenVerifier verifier() throws Exception {
        return verifier(Interop.env("INTEROP_AUDIENCE"), Interop.leeway());
    }

    @Test
    void acceptsAGenuineToken() throws Exception {
        String token = Interop.mint();
        assertEquals(Interop.subject(token), verifier().verify(token).getSubject());
    }

    @Test
    void rejectsATamperedToken() throws Exception {
        String token = Interop.tampered(Interop.mint());
        BadJOSEException e = assertThrows(BadJOSEException.class, () -> verifier().verify(token));
        assertTrue(e.getMessage().contains("Signed JWT rejected: Invalid signature"), e::getMessage);
    }

    @Test
    void rejectsAnUnsignedToken() throws Exception {
        String token = Interop.unsigned(Interop.mint());
        BadJOSEException e = assertThrows(BadJOSEException.class, () -> verifier().verify(token));
        assertTrue(e.getMessage().contains("nsecured"), e::getMessage);
    }

    @Test
    void rejectsAnExpiredTokenOnlyPastTheLeeway() throws Exception {
        String token = Interop.expired();
        BadJWTException e = assertThrows(BadJWTException.class, () -> verifier().verify(token));
        assertTrue(e.getMessage().contains("Expired JWT"), e::getMessage);
        verifier(Interop.env("INTEROP_AUDIENCE"), Duration.ofHours(1)).verify(token);
    }

    @Test
    void rejectsATokenForAnotherAudience() throws Exception {
        String token = Interop.mint();
        BadJWTException e = assertThrows(BadJWTException.class,
                () -> verifier("some-other-service", Interop.leeway()).verify(token));
        assertTrue(e.getMessage().contains("JWT audience rejected"), e::getMessage);
    }
}
