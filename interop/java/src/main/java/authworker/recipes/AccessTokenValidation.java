package authworker.recipes;

import java.time.Duration;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.security.oauth2.jwt.JwtTimestampValidator;
import org.springframework.security.oauth2.jwt.JwtTypeValidator;

/**
 * What a Spring Boot resource server needs besides application.yml to take
 * the worker's access tokens. Boot adds every validator bean to the
 * decoder's, and each of these replaces the default of its kind.
 */
@Configuration(proxyBeanMethods = false)
public class AccessTokenValidation {

    /** RFC 9068 access tokens carry typ at+jwt; by default only JWT passes. */
    @Bean
    JwtTypeValidator accessTokenType() {
        return new JwtTypeValidator("at+jwt", "application/at+jwt");
    }

    /** exp is required, and honoured with the configured leeway. */
    @Bean
    JwtTimestampValidator accessTokenLifetime(@Value("${authworker.token-leeway:60s}") Duration leeway) {
        JwtTimestampValidator validator = new JwtTimestampValidator(leeway);
        validator.setAllowEmptyExpiryClaim(false);
        return validator;
    }
}
