"""CURVE authentication and encryption for multi-machine rigs, and ``mvcap keys``.

CURVE is libzmq's built-in security mechanism. Every party owns a long-term Curve25519 keypair
(Bernstein 2006; 32-byte keys, written as 40 Z85 characters in the key files). The CurveZMQ
handshake (ZeroMQ RFC 26) proves to the client that it talks to the holder of the server's secret
key, proves the client's long-term public key to the server, and then encrypts every frame with
short-term session keys (perfect forward secrecy). The server role is independent of bind/connect:
here the binding node sockets are the CURVE servers and the workers, viewers and recorders that
connect are the clients.

Which client keys a server accepts is decided by a ZAP handler (ZeroMQ Authentication Protocol,
RFC 27): libzmq asks the handler bound at ``inproc://zeromq.zap.01`` in the socket's Context,
passing the socket's ZAP domain and the client's public key. :class:`CurveServer` runs pyzmq's
:class:`zmq.auth.thread.ThreadAuthenticator` for that, with one allow-list per domain (``input``
for worker detections, ``output`` for viewers/recorders), and answers with the client's *name* as
the ZAP User-Id. libzmq attaches the User-Id to every message of that connection, so the receiver
reads it with :func:`peer_name` (``frame.get("User-Id")`` on frames received with ``copy=False``).

Per-camera binding: each camera's worker has its own keypair, ``<camera>.key`` (public) and
``<camera>.key_secret`` (secret), and the node's allow-list maps each public key to the file stem,
i.e. the camera name. The node drops and counts any message whose header camera differs from
:func:`peer_name`: a key cannot speak for another camera, so a stolen cam02 key cannot inject cam01
detections.

Caveats:
    - Without a ZAP handler in the Context, libzmq accepts *any* client key. :class:`CurveServer`
      starts the handler before it configures a socket, and refuses sockets of another Context.
    - One ZAP handler per Context: create one :class:`CurveServer` per process and secure every
      server socket through it (each with its own ``domain``).
    - Failed handshakes (a plain client, an unknown key, a wrong server key) never reach the
      application; :meth:`CurveServer.poll_rejections` counts them from the socket monitor. A
      rejected client may retry, so the figure counts attempts, not distinct peers.

Example:
    >>> is_loopback("tcp://127.0.0.1:5555"), is_loopback("tcp://*:5555")
    (True, False)
"""

from __future__ import annotations

import ipaddress
import logging
import re
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from core.errors import CaptureError, ConfigError, InputError

__all__ = [
    "CurveServer",
    "is_loopback",
    "load_keypair",
    "load_public_key",
    "load_public_keys",
    "NodeSecurity",
    "add_client_key_args",
    "client_securer",
    "peer_name",
    "valid_name",
    "secure_client",
    "warn_if_exposed",
]

log = logging.getLogger(__name__)

PUBLIC_SUFFIX: Final = ".key"
SECRET_SUFFIX: Final = ".key_secret"
HANDSHAKE_FAILED: Final = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_Z85_KEY: Final = re.compile(rb"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")
_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_WARN_EVERY_S: Final = 10.0
_MAX_LOGGED_KEYS: Final = 64

KeySource = Path | str | bytes


# -- key files --------------------------------------------------------------------------------------
def _check_z85(key: bytes | None, path: Path, what: str) -> bytes:
    if key is None or not _Z85_KEY.fullmatch(key):
        raise InputError(f"{path}: {what} must be 40 Z85 characters (a file made by 'mvcap keys')")
    return key


def _load(path: Path | str) -> tuple[bytes, bytes | None]:
    path = Path(path)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read a CURVE key file ({exc})") from None
    return _check_z85(public, path, "public-key"), secret


def load_public_key(path: Path | str) -> bytes:
    """The Z85 public key of a key file (``NAME.key``, or ``NAME.key_secret`` which holds both).

    Raises:
        InputError: the file is missing, unreadable or holds no valid public key.
    """
    return _load(path)[0]


def load_keypair(path: Path | str) -> tuple[bytes, bytes]:
    """The Z85 ``(public, secret)`` keys of a ``NAME.key_secret`` file.

    Logs a warning when the file can be read by group or others (it should be 0600).

    Raises:
        InputError: the file is missing, unreadable, or holds no valid secret key.
    """
    path = Path(path)
    public, secret = _load(path)
    secret = _check_z85(secret, path, "secret-key (a NAME.key_secret file)")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret key %s is accessible to others (mode %o); run: chmod 600 %s", path, mode & 0o777, path)
    return public, secret


def load_public_keys(folder: Path | str, names: Iterable[str] | None = None) -> dict[str, bytes]:
    """An allow-list ``{name: z85 public key}`` from the ``<name>.key`` files of a folder.

    Args:
        folder: folder of public key files (as written by ``mvcap keys``).
        names: exactly these names (e.g. the rig's cameras; each must have a key file). None: every
            ``*.key`` file of the folder.

    Raises:
        InputError: the folder is missing, a named key file is missing, or a file is malformed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a folder of <name>{PUBLIC_SUFFIX} public key files")
    if names is None:
        names = sorted(p.name[: -len(PUBLIC_SUFFIX)] for p in folder.glob("*" + PUBLIC_SUFFIX))
    return {name: load_public_key(folder / f"{name}{PUBLIC_SUFFIX}") for name in names}


def _public_key(source: KeySource, name: str) -> bytes:
    if isinstance(source, bytes):
        if len(source) == 32:
            return z85.encode(source)
        return _check_z85(source, Path(f"<key of {name}>"), "public key")
    return load_public_key(source)


# -- server side ------------------------------------------------------------------------------------
class _NamingAuthenticator(ThreadAuthenticator):
    """ZAP handler thread whose User-Id is the allow-listed client's name, not its Z85 key."""

    def __init__(self, context: zmq.Context, names: dict[bytes, str]) -> None:
        super().__init__(context=context, log=logging.getLogger(__name__ + ".zap"))
        self._names = names

    def curve_user_id(self, client_public_key: bytes) -> str:
        """User-Id of an accepted client: its name in the allow-list (called only on success)."""
        z = z85.encode(client_public_key)
        return self._names.get(z) or z.decode("ascii")


class _AllowLists:
    """ZAP credentials provider: accepts a key if it is in the allow-list of the socket's domain."""

    def __init__(self) -> None:
        self.by_domain: dict[str, frozenset[bytes]] = {}
        self._logged: set[bytes] = set()

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key in self.by_domain.get(domain, frozenset())
        if not ok and key not in self._logged and len(self._logged) < _MAX_LOGGED_KEYS:
            self._logged.add(key)  # each unknown key once, then only counted
            log.warning("CURVE: rejected unknown client key %s on %s", key.decode("ascii", "replace"), domain)
        return ok


class CurveServer:
    """The ZAP handler of one Context plus the CURVE server setup of its binding sockets.

    Start it before creating the node's sockets, call :meth:`secure` on each socket before
    ``bind``, read peers with :func:`peer_name`, poll :meth:`poll_rejections` from the loop that
    owns the sockets, and :meth:`close` it after closing them (or use it as a context manager).

    Args:
        ctx: the Context of the sockets to secure (the process's default instance if None).

    Raises:
        CaptureError: another ZAP handler already runs in this Context.

    Attributes:
        rejections: failed handshakes per domain since start (updated by :meth:`poll_rejections`).
    """

    def __init__(self, ctx: zmq.Context | None = None) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.rejections: dict[str, int] = {}
        self._names: dict[bytes, str] = {}
        self._allow = _AllowLists()
        self._monitors: list[tuple[str, zmq.Socket, zmq.Socket]] = []
        self._last_warn = 0.0
        self._auth = _NamingAuthenticator(self.ctx, self._names)
        try:
            self._auth.start()
        except zmq.ZMQError as exc:
            self._auth.stop()
            raise CaptureError(f"cannot start the ZAP handler (one per ZeroMQ Context): {exc}") from None
        self._closed = False

    def secure(
        self,
        socket: zmq.Socket,
        server_secret_file: Path | str,
        allowed: Mapping[str, KeySource],
        domain: str = "input",
    ) -> None:
        """Make ``socket`` a CURVE server that accepts exactly the ``allowed`` client keys.

        Args:
            socket: a socket of this server's Context, not yet bound.
            server_secret_file: this server's ``NAME.key_secret`` file.
            allowed: ``{name: key}`` where key is a key file path, a Z85 key (40 bytes) or a raw key
                (32 bytes); ``name`` becomes the connection's User-Id (see :func:`peer_name`). For the
                node input, use :func:`load_public_keys` with the rig's camera names.
            domain: ZAP domain of this socket, one per allow-list (``input``, ``output``).

        Raises:
            InputError: a key file is missing or malformed.
            ConfigError: a key listed under two names, a name given two keys, or a domain reused.
            CaptureError: the server is closed, the socket belongs to another Context or is bound.
        """
        if self._closed:
            raise CaptureError("CurveServer is closed")
        if socket.context.underlying != self.ctx.underlying:
            raise CaptureError("socket belongs to another ZeroMQ Context than the CurveServer (its ZAP handler)")
        if socket.getsockopt(zmq.LAST_ENDPOINT):
            raise CaptureError("secure() must be called before the socket binds or connects")
        if not domain or domain in self._allow.by_domain:
            raise ConfigError(f"ZAP domain must be non-empty and used once; got {domain!r}")
        _, secret = load_keypair(server_secret_file)
        keys = {name: _public_key(src, name) for name, src in allowed.items()}
        names: dict[bytes, str] = {}
        for name, key in keys.items():
            if names.setdefault(key, name) != name:
                raise ConfigError(f"one CURVE key is listed for both {names[key]!r} and {name!r}")
            if self._names.get(key, name) != name:
                raise ConfigError(f"the key of {name!r} is already allowed as {self._names[key]!r}")
        if not keys:
            log.warning("CURVE %s: the allow-list is empty; every client will be rejected", domain)
        self._names.update(names)
        self._allow.by_domain[domain] = frozenset(names)
        self._auth.configure_curve_callback(domain, self._allow)
        socket.curve_secretkey = secret
        socket.curve_server = True
        socket.zap_domain = domain.encode()
        self._monitors.append((domain, socket, socket.get_monitor_socket(HANDSHAKE_FAILED)))
        self.rejections[domain] = 0
        log.info(
            "CURVE %s: server key %s, %d allowed clients: %s", domain, server_secret_file, len(keys), ", ".join(keys)
        )

    def poll_rejections(self) -> int:
        """Failed handshakes since the last call, over all secured sockets (non-blocking).

        Counts the socket monitor's ``EVENT_HANDSHAKE_FAILED_AUTH`` (key not allowed),
        ``_PROTOCOL`` (plain client, wrong server key) and ``_NO_DETAIL`` events. Call it from the
        thread that owns the sockets, regularly (e.g. every loop turn): events beyond the monitor's
        queue (1000) are lost. A WARNING summarises new rejections at most every 10 s.
        """
        new = 0
        for domain, _, mon in self._monitors:
            while True:
                try:
                    event = recv_monitor_message(mon, zmq.NOBLOCK)
                except zmq.Again:
                    break
                if event["event"] & HANDSHAKE_FAILED:
                    self.rejections[domain] += 1
                    new += 1
                    log.debug("CURVE %s: handshake failed (%s, %s)", domain, event["event"], event["value"])
        now = time.monotonic()
        if new and now - self._last_warn >= _WARN_EVERY_S:
            log.warning("CURVE: rejected connection attempts so far: %s", self.rejections)
            self._last_warn = now
        return new

    def close(self) -> None:
        """Stop the monitors and the ZAP thread (idempotent). Close the secured sockets first."""
        if self._closed:
            return
        self._closed = True
        for _, sock, mon in self._monitors:
            if not sock.closed:
                sock.disable_monitor()
            mon.close(linger=0)
        self._monitors.clear()
        self._auth.stop()

    def __enter__(self) -> CurveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peer_name(frame: zmq.Frame | bytes) -> str | None:
    """Name of the authenticated peer that sent ``frame`` (the ZAP User-Id), or None.

    Args:
        frame: a frame received with ``copy=False`` on a socket secured by :class:`CurveServer`.

    Returns:
        The client's allow-list name (the camera name for the node input); None for ``bytes``
        (received with ``copy=True``, which drops the metadata) or an unauthenticated connection.
    """
    if not isinstance(frame, zmq.Frame):
        return None
    try:
        name = frame.get("User-Id")
    except zmq.ZMQError:  # EINVAL: no such property on this connection
        return None
    return name or None


# -- client side ------------------------------------------------------------------------------------
def secure_client(socket: zmq.Socket, client_secret_file: Path | str, server_public_file: Path | str) -> None:
    """Make ``socket`` a CURVE client of the server whose public key is in ``server_public_file``.

    Call before ``connect``. Used by a worker's XPUB (client key ``<camera>.key_secret``) and by a
    viewer's or recorder's SUB of the node output.

    Raises:
        InputError: a key file is missing or malformed.
        CaptureError: the socket is already bound or connected.
    """
    if socket.getsockopt(zmq.LAST_ENDPOINT):
        raise CaptureError("secure_client() must be called before the socket connects")
    public, secret = load_keypair(client_secret_file)
    socket.curve_serverkey = load_public_key(server_public_file)
    socket.curve_publickey = public
    socket.curve_secretkey = secret


# -- exposure ---------------------------------------------------------------------------------------
def is_loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint is reachable from this machine only.

    ``ipc://`` and ``inproc://`` are local; ``tcp://`` is local for 127.0.0.0/8, ``::1`` and
    ``localhost``. ``tcp://*``, ``tcp://0.0.0.0``, interface names, other hosts, other transports and
    malformed endpoints are not.

    Example:
        >>> [is_loopback(e) for e in ("tcp://127.0.0.2:5555", "tcp://[::1]:5555", "ipc:///tmp/a")]
        [True, True, True]
        >>> [is_loopback(e) for e in ("tcp://0.0.0.0:5555", "tcp://192.168.1.5:5555", "tcp://eth0:1")]
        [False, False, False]
    """
    scheme, sep, rest = endpoint.partition("://")
    scheme = scheme.lower()
    if not sep:
        return False
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host, sep, port = rest.rpartition(";")[2].rpartition(":")
    if not sep or not host:
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def warn_if_exposed(endpoint: str, curve_enabled: bool, logger: logging.Logger | None = None) -> bool:
    """Log a WARNING when a non-loopback endpoint is bound without CURVE; True if it warned."""
    if curve_enabled or is_loopback(endpoint):
        return False
    (logger or log).warning(
        "%s is reachable from other machines without CURVE: anyone on the network can send or read data;"
        " make keys with 'mvcap keys' and configure them",
        endpoint,
    )
    return True


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a key (and a camera): 1-64 letters, digits, ``_`` or ``-``."""
    return bool(_NAME.fullmatch(name))


class NodeSecurity:
    """The node's CURVE setup, from its config: input allow-list per camera, optional output keys.

    With ``[node] curve_secret_key`` set, the input is a CURVE server that accepts exactly the keys
    ``<camera>.key`` of the rig's cameras found in ``curve_clients_dir``, and every message must
    come from its own camera's key (see :meth:`peer`); with ``curve_output_clients_dir`` also set,
    the 3D output accepts only the viewers and recorders whose keys lie there. Without keys both
    stay plain, and binding a non-loopback address logs a WARNING.

    Args:
        ctx: the Context of the node's sockets.
        node_cfg: the ``[node]`` section (:class:`core.config.NodeConfig`).
        cameras: the rig's camera names.

    Raises:
        ConfigError: keys configured incompletely.
        InputError: a key file is missing or malformed.
    """

    def __init__(self, ctx: zmq.Context, node_cfg, cameras: Iterable[str]) -> None:  # noqa: ANN001
        self.cfg = node_cfg
        self.cameras = tuple(cameras)
        self.input_secured = bool(node_cfg.curve_secret_key)
        self.output_secured = bool(node_cfg.curve_secret_key and node_cfg.curve_output_clients_dir)
        if node_cfg.curve_output_clients_dir and not node_cfg.curve_secret_key:
            raise ConfigError("curve_output_clients_dir needs curve_secret_key (the node's secret key)")
        if self.input_secured and not node_cfg.curve_clients_dir:
            raise ConfigError("curve_secret_key needs curve_clients_dir (the cameras' public keys)")
        self.server = CurveServer(ctx) if self.input_secured else None

    def secure_input(self, sock: zmq.Socket) -> None:
        """Configure the input SUB before it binds."""
        if self.server is not None:
            keys = load_public_keys(self.cfg.curve_clients_dir, self.cameras)
            self.server.secure(sock, self.cfg.curve_secret_key, keys, "input")
        warn_if_exposed(self.cfg.input_endpoint, self.input_secured)

    def secure_output(self, sock: zmq.Socket) -> None:
        """Configure the output PUB before it binds."""
        if self.server is not None and self.output_secured:
            keys = load_public_keys(self.cfg.curve_output_clients_dir)
            self.server.secure(sock, self.cfg.curve_secret_key, keys, "output")
        warn_if_exposed(self.cfg.output_endpoint, self.output_secured)

    def peer(self, frames: list) -> str | None:
        """The authenticated sender of a message received with ``copy=False`` (None when plain)."""
        return peer_name(frames[0]) if self.server is not None and frames else None

    def poll(self, intake) -> None:  # noqa: ANN001 - capture.service.intake.Intake
        """Count failed handshakes as refused messages of kind ``rejected_handshake``."""
        if self.server is not None:
            n = self.server.poll_rejections()
            if n:
                intake.dropped["rejected_handshake"] += n

    def close(self) -> None:
        """Stop the ZAP handler (after the sockets are closed)."""
        if self.server is not None:
            self.server.close()


def add_client_key_args(parser, who: str) -> None:  # noqa: ANN001 - argparse.ArgumentParser
    """Add ``--curve-secret-key`` and ``--curve-server-key`` to a client command's parser."""
    parser.add_argument("--curve-secret-key", default=None, help=f"this {who}'s CURVE secret key file (mvcap keys)")
    parser.add_argument("--curve-server-key", default=None, help="the node's CURVE public key file")


def client_securer(args):  # noqa: ANN001, ANN201 - argparse.Namespace -> Callable[[zmq.Socket], None] | None
    """The ``secure(socket)`` callable for a client's socket from its CLI arguments (None: plain).

    Raises:
        InputError: only one of the two key files given.
    """
    if not (args.curve_secret_key or args.curve_server_key):
        return None
    if not (args.curve_secret_key and args.curve_server_key):
        raise InputError("--curve-secret-key and --curve-server-key go together")

    def secure(sock: zmq.Socket) -> None:
        secure_client(sock, args.curve_secret_key, args.curve_server_key)

    return secure
