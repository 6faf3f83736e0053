"""Who may talk to the local backend: holders of the state dir's bearer token, by a loopback name.

Any process on the machine can reach 127.0.0.1, and a web page can reach it too through DNS
rebinding (a name the attacker controls that resolves to 127.0.0.1). So every request must
carry ``Authorization: Bearer <token>`` and a ``Host`` header naming the loopback address.

The token belongs to the state directory, not to one server process: it is made once
(``secrets.token_urlsafe(32)``) and kept in ``state_dir/api_token`` (0600, in the 0700 state
dir), so a client that was given it (the product's own client, the openai SDK, curl) keeps
working across server restarts. To rotate it, stop the backend (``python -m core.local stop
--state-dir D``) and delete the file; the next start makes a new one.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from core.errors import CoreError
from core.safefs import PRIVATE_FILE_MODE, open_private, private_dir, temp_path_for

TOKEN_FILE = "api_token"
#: Names a loopback client may use in its Host header (with or without the server's port).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# What we accept from the token file: what token_urlsafe makes, or a user's own long token.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")


def read_token(state_dir: Path) -> str | None:
    """The bearer token of ``state_dir``, or None when it has none (yet) or the file is unusable."""
    path = Path(state_dir) / TOKEN_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
        st = path.stat()
    except (OSError, UnicodeDecodeError):
        return None
    if not _TOKEN_PATTERN.fullmatch(text):
        return None
    # A token others can read protects nothing: close a file an older version or a copy left open.
    if os.name != "nt" and st.st_mode & 0o077 and st.st_uid == os.getuid():
        try:
            os.chmod(path, PRIVATE_FILE_MODE)
        except OSError:
            pass
    return text


def state_token(state_dir: Path) -> str:
    """The bearer token of ``state_dir``, made (0600) on first use. Safe when several processes
    ask at once: the file appears whole, once, and every caller returns its content."""
    token = read_token(state_dir)
    if token is not None:
        return token
    path = Path(state_dir) / TOKEN_FILE
    private_dir(path.parent)
    tmp = temp_path_for(path)
    with open_private(tmp, "xb") as handle:
        handle.write(secrets.token_urlsafe(32).encode("ascii"))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # link() creates the name only if it is absent, so two starters cannot end up holding
        # different tokens, and nobody ever reads a half-written one.
        os.link(tmp, path)
    except FileExistsError:
        if read_token(state_dir) is None:
            os.replace(tmp, path)  # an unusable file (empty, edited by hand): replace it whole
    finally:
        tmp.unlink(missing_ok=True)
    token = read_token(state_dir)
    if token is None:
        raise CoreError(f"Could not create the local backend's token file {path}.")
    return token


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``token`` as a bearer token (constant time)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Headers arrive decoded as latin-1; compare bytes so any header text is comparable.
    return secrets.compare_digest(value.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def host_allowed(host: str | None, port: int) -> bool:
    """Whether a Host header names this loopback server (``127.0.0.1``, ``localhost`` or
    ``[::1]``, bare or with ``port``). Anything else may be a DNS-rebinding page."""
    if not host:
        return False
    name = host.strip().lower()
    return any(name in (allowed, f"{allowed}:{port}") for allowed in LOOPBACK_HOSTS)
