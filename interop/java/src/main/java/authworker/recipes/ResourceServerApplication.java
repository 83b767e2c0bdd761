package authworker.recipes;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.security.oauth2.jwt.Jwt;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * A resource server with one endpoint, /me, that answers with the subject
 * of the bearer token: Spring Boot's default security (every request
 * authenticated, by a JWT) with application.yml and AccessTokenValidation.
 */
@SpringBootApplication
@RestController
public class ResourceServerApplication {

    @GetMapping("/me")
    String me(@AuthenticationPrincipal Jwt jwt) {
        return jwt.getSubject();
    }

    public static void main(String[] args) {
        SpringApplication.run(ResourceServerApplication.class, args);
    }
}
