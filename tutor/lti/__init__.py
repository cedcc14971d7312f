"""LTI 1.3 tool: JWKS, OIDC login initiation, launch, and Assignment and Grade Services passback."""
