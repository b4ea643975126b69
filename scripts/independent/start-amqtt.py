#!/usr/bin/env python3
"""Start the amqtt broker (PyPI `amqtt`, pinned in scripts/third-party-brokers.sh) in the foreground on 127.0.0.1.

Installs nothing. Run it with the Python of the venv that has amqtt, e.g.
    /tmp/unplug-amqtt/bin/python scripts/independent/start-amqtt.py --port 18840 --ws-port 18841

Login: when the environment variables BROKER_USERNAME and BROKER_PASSWORD are
both set, the broker requires that login (amqtt's FileAuthPlugin with an
argon2 password file written to a private temp dir, removed on exit);
otherwise anonymous clients are allowed. The password is never printed.
WebSocket: amqtt accepts any path (e.g. /mqtt) and the "mqtt" subprotocol.
Stops on SIGINT/SIGTERM.
"""

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile

from amqtt.broker import Broker


def build_config(args, pwfile):
    listeners = {"default": {"type": "tcp", "bind": "127.0.0.1:%d" % args.port}}
    if args.ws_port:
        listeners["ws"] = {"type": "ws", "bind": "127.0.0.1:%d" % args.ws_port}
    plugins = {}
    if pwfile:
        plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {"allow_anonymous": False}
        plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {"password_file": pwfile}
    else:
        plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {"allow_anonymous": True}
    return {"listeners": listeners, "plugins": plugins}


async def run(args, pwfile):
    broker = Broker(build_config(args, pwfile))
    await broker.start()
    print("amqtt listening on 127.0.0.1:%d (tcp)%s%s" % (
        args.port, ", 127.0.0.1:%d (ws)" % args.ws_port if args.ws_port else "",
        ", login required" if pwfile else ", anonymous"), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=18840)
    ap.add_argument("--ws-port", type=int)
    args = ap.parse_args()
    user, password = os.environ.get("BROKER_USERNAME"), os.environ.get("BROKER_PASSWORD")
    tmp, pwfile = None, None
    if user and password:
        from pwdlib import PasswordHash
        from pwdlib.hashers.argon2 import Argon2Hasher
        tmp = tempfile.mkdtemp(prefix="amqtt-auth-")
        pwfile = os.path.join(tmp, "passwd")
        with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("%s:%s\n" % (user, PasswordHash((Argon2Hasher(),)).hash(password)))
    try:
        asyncio.run(run(args, pwfile))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
