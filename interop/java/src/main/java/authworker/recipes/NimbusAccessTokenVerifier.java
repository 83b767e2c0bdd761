package authworker.recipes;

import java.net.URL;
import java.text.ParseException;
import java.time.Duration;
import java.util.Set;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;

/**
 * Verifies the worker's access tokens with Nimbus JOSE + JWT alone: the
 * keys from the worker's JWKS (cached, refetched for an unknown kid), typ
 * at+jwt, the algorithms the worker signs with, iss, aud and exp.
 */
public final class NimbusAccessTokenVerifier {

    private final DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();

    public NimbusAccessTokenVerifier(URL jwksUri, String issuer, String audience, Duration leeway) {
        JWKSource<SecurityContext> keys = JWKSourceBuilder.create(jwksUri).retrying(true).build();
        processor.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(
                new JOSEObjectType("at+jwt"), new JOSEObjectType("application/at+jwt")));
        processor.setJWSKeySelector(new JWSVerificationKeySelector<>(Set.of(JWSAlgorithm.ES256, JWSAlgorithm.RS256), keys));
        DefaultJWTClaimsVerifier<SecurityContext> claims = new DefaultJWTClaimsVerifier<>(
                audience,
                new JWTClaimsSet.Builder().issuer(issuer).build(),
                Set.of("sub", "exp", "iat", "jti", "client_id"));
        claims.setMaxClockSkew((int) leeway.toSeconds());
        processor.setJWTClaimsSetVerifier(claims);
    }

    /** Returns the token's claims, or throws if it is not a valid access token. */
    public JWTClaimsSet verify(String token) throws ParseException, BadJOSEException, JOSEException {
        return processor.process(token, null);
    }
}
