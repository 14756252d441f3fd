"""The TLS context of every provider connection (WebSocket and HTTPS login).

Certificates are verified against the operating system's trust store, through
truststore: the Keychain on macOS, the certificate store on Windows, the
system CA bundle on Linux wherever the distribution keeps it. Python's own
default is the CA paths compiled into the OpenSSL it was built with. A
packaged app carries those paths to machines where they do not exist (every
wss:// would then fail to verify), and they miss the company CA that IT
installed in the OS for a TLS-inspecting proxy. On Linux, SSL_CERT_FILE and
SSL_CERT_DIR still apply, as they do for OpenSSL.
"""

from __future__ import annotations

import ssl

import truststore


def client_context() -> ssl.SSLContext:
    """A fresh client context: hostname checked, certificate required, the OS's
    trust store. Made per connection (cheap next to a handshake), so a changed
    trust store or SSL_CERT_FILE applies to the next connection."""
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
