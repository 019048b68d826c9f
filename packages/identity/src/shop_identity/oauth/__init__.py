"""The OAuth2 authorization server and OpenID Connect provider (authlib, bridged into Litestar)."""
