"""gunicorn's settings for this project: gunicorn reads ./gunicorn.conf.py from the directory it starts in.

gunicorn believes X-Forwarded-Proto (and X-Forwarded-Ssl, X-Forwarded-Protocol) from the addresses in
``forwarded_allow_ips`` and then tells Django the request came over HTTPS, whatever Django's own
DJANGO_BEHIND_TLS_PROXY says. Its default trusts 127.0.0.1, so without a proxy (or behind one that passes
the client's header through) a plain-HTTP client could claim HTTPS. Here nobody is believed unless the
operator says a TLS proxy is in front (DJANGO_BEHIND_TLS_PROXY=true); then the proxy's addresses come from
FORWARDED_ALLOW_IPS, by default this host's loopback, where such a proxy usually runs (README, Security).
"""

import os

_behind_proxy = os.environ.get("DJANGO_BEHIND_TLS_PROXY", "").strip().lower() in {"1", "true", "yes", "on"}
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1" if _behind_proxy else "")
