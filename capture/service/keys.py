"""``mvcap keys``: make the CURVE keypairs of a rig (the node and every camera).

See :mod:`capture.service.security` for what the keys are for and how the node uses them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import zmq.auth

from capture.service.security import PUBLIC_SUFFIX, SECRET_SUFFIX, valid_name
from core.errors import CaptureError, ConfigError, InputError

__all__ = ["main", "make_keys"]


def make_keys(out: Path | str, names: Iterable[str], force: bool = False) -> dict[str, tuple[Path, Path]]:
    """Write one CURVE keypair per name: ``NAME.key`` (public, 0644) and ``NAME.key_secret`` (0600).

    Files are made in a private temporary folder inside ``out`` and moved into place, so a secret
    is never readable by others, not even briefly.

    Args:
        out: output folder (created if missing).
        names: key names (letters, digits, ``_``, ``-``): ``node`` and the camera names.
        force: overwrite existing key files.

    Returns:
        ``{name: (public_path, secret_path)}``.

    Raises:
        ConfigError: a bad or repeated name, or no name.
        InputError: a key file exists (and not ``force``), or ``out`` cannot be written.
    """
    names = list(names)
    if not names:
        raise ConfigError("expected at least one key name")
    for name in names:
        if not valid_name(name):
            raise ConfigError(f"key name {name!r} must be 1-64 letters, digits, '_' or '-'")
    if len(set(names)) != len(names):
        raise ConfigError(f"key names must be unique; got {names}")
    out = Path(out)
    paths = {n: (out / f"{n}{PUBLIC_SUFFIX}", out / f"{n}{SECRET_SUFFIX}") for n in names}
    existing = [str(p) for pair in paths.values() for p in pair if p.exists()]
    if existing and not force:
        raise InputError(f"refusing to overwrite {', '.join(existing)}; pass --force to replace them")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".mvcap-keys-") as tmp:
            for name, (public, secret) in paths.items():
                tmp_public, tmp_secret = zmq.auth.create_certificates(tmp, name)
                os.chmod(tmp_secret, 0o600)
                os.chmod(tmp_public, 0o644)
                os.replace(tmp_secret, secret)
                os.replace(tmp_public, public)
    except OSError as exc:
        raise InputError(f"{out}: cannot write key files ({exc})") from None
    return paths


def main(argv: list[str] | None = None) -> int:
    """``mvcap keys --out DIR --names node,cam01,...``: make CURVE keypairs. Exit 0 ok, 2 bad input."""
    p = argparse.ArgumentParser(
        prog="mvcap keys",
        description="Make CURVE keypairs (NAME.key public, NAME.key_secret secret) for the node and cameras.",
    )
    p.add_argument("--out", required=True, help="output folder for the key files")
    p.add_argument("--names", required=True, help="comma-separated names: the node and each camera")
    p.add_argument("--server", default="node", help="name of the node's keypair (for the printed config)")
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    try:
        paths = make_keys(args.out, names, args.force)
    except CaptureError as exc:
        print(f"mvcap keys: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    print(f"wrote {len(paths)} CURVE keypairs in {out}:")
    for name, (public, secret) in paths.items():
        print(f"  {name}: {public.name} (public), {secret.name} (secret, mode 0600)")
    print("Copy each NAME.key_secret only to the machine that runs NAME; the .key files are public.")
    server, cams = args.server, [n for n in names if n != args.server]
    print("\n# node config (TOML)")
    print("[node]")
    print(f"curve_secret_key = {json.dumps(str(out / (server + SECRET_SUFFIX)))}  # the node's secret key")
    print(f"curve_clients_dir = {json.dumps(str(out))}  # allowed cameras: <camera>.key, camera names as stems")
    if cams:
        cam = cams[0]
        print(
            f"# worker on {cam}'s machine: mvcap worker --camera {cam}"
            f" --curve-secret-key {out / (cam + SECRET_SUFFIX)} --curve-server-key {out / (server + PUBLIC_SUFFIX)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
