"""OpenID Connect toward providers (discovery, tokens, keys): `core.oidc`'s OidcClient."""
