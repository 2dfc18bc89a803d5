"""The LiteRT.js runtime the browser engine runs on, kept in static/vendor/litertjs/ (committed).

Pinned versions of two npm packages (Apache-2.0): ``@litertjs/core`` and the helper it imports
by bare name, ``@litertjs/wasm-utils``. Of core's four WebAssembly builds only the "compat"
one is served: it needs nothing beyond WebAssembly SIMD, so every current browser runs it
(the others need relaxed SIMD, threads with cross-origin isolation, or JSPI).

    python scripts/vendor_litertjs.py --check     # the committed files match SHA256SUMS (a test runs this)
    python scripts/vendor_litertjs.py --refresh   # fetch the pinned tarballs from the npm registry, verify, unpack
    python scripts/vendor_litertjs.py --refresh --pin   # after changing VERSION: write the new hashes

Tarballs come through ``npm pack`` when npm is installed, else straight from the registry over
HTTPS; each is checked against the registry's sha512 integrity, then every file against SHA256SUMS.
"""
import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from utils.files import file_sha256  # noqa: E402

VENDOR = os.path.join(ROOT, "static", "vendor", "litertjs")
SUMS = os.path.join(VENDOR, "SHA256SUMS")
REGISTRY = "https://registry.npmjs.org"
VERSION = "2.5.3"
# destination in VENDOR -> (package, path inside its tarball)
FILES = {
    "core/index.js": ("@litertjs/core", "package/dist/index.js"),
    "wasm-utils/index.js": ("@litertjs/wasm-utils", "package/dist/index.js"),
    "wasm/litert_wasm_compat_internal.js": ("@litertjs/core", "package/wasm/litert_wasm_compat_internal.js"),
    "wasm/litert_wasm_compat_internal.wasm": ("@litertjs/core", "package/wasm/litert_wasm_compat_internal.wasm"),
}


def pinned():
    """``{relative path: sha256}`` from SHA256SUMS."""
    with open(SUMS) as handle:
        return {name: digest for digest, name in (line.split() for line in handle if line.strip())}


def check():
    """The problems with the committed files (missing, or not the pinned bytes); empty when none."""
    problems = []
    for name, digest in pinned().items():
        path = os.path.join(VENDOR, name)
        if not os.path.isfile(path):
            problems.append(f"{name} is missing")
        elif file_sha256(path) != digest:
            problems.append(f"{name} differs from its pinned sha256")
    missing = sorted(set(FILES) - set(pinned()))
    problems += [f"{name} has no pinned sha256" for name in missing]
    return problems


def tarball(package):
    """The pinned version's tarball bytes, verified against the registry's sha512 integrity."""
    spec = f"{package}@{VERSION}"
    if shutil.which("npm"):
        with tempfile.TemporaryDirectory() as folder:
            out = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", folder],
                                 check=True, capture_output=True, text=True).stdout
            info = json.loads(out)[0]
            with open(os.path.join(folder, info["filename"]), "rb") as handle:
                data = handle.read()
            integrity = info["integrity"]
    else:
        with urllib.request.urlopen(f"{REGISTRY}/{package}/{VERSION}", timeout=60) as answer:
            dist = json.load(answer)["dist"]
        with urllib.request.urlopen(dist["tarball"], timeout=300) as answer:
            data = answer.read()
        integrity = dist["integrity"]
    algorithm, expected = integrity.split("-", 1)
    if algorithm != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise SystemExit(f"error: {spec}: the tarball does not match the registry's integrity {integrity}")
    return data


def refresh(pin=False):
    """Unpack the pinned files into VENDOR; refuse any whose sha256 is not the pinned one (unless ``pin``)."""
    archives = {package: tarfile.open(fileobj=io.BytesIO(tarball(package))) for package, _ in set(FILES.values())}
    expected = {} if pin else pinned()
    digests = {}
    for name, (package, inside) in FILES.items():
        data = archives[package].extractfile(inside).read()
        digests[name] = hashlib.sha256(data).hexdigest()
        if not pin and expected.get(name) != digests[name]:
            raise SystemExit(f"error: {name} from {package}@{VERSION} does not match its pinned sha256")
        os.makedirs(os.path.dirname(os.path.join(VENDOR, name)), exist_ok=True)
        with open(os.path.join(VENDOR, name), "wb") as handle:
            handle.write(data)
    if pin:
        with open(SUMS, "w") as handle:
            handle.writelines(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
    print(f"LiteRT.js {VERSION}: {len(FILES)} files in {os.path.relpath(VENDOR, ROOT)}, hashes verified")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check or refresh the vendored LiteRT.js runtime.")
    parser.add_argument("--check", action="store_true", help="verify the committed files against SHA256SUMS")
    parser.add_argument("--refresh", action="store_true", help="fetch the pinned version from the npm registry")
    parser.add_argument("--pin", action="store_true", help="with --refresh: write the fetched files' hashes")
    args = parser.parse_args(argv)
    if args.pin and not args.refresh:
        parser.error("--pin goes with --refresh")
    if args.refresh:
        refresh(args.pin)
    problems = check()
    for problem in problems:
        print(f"error: {problem} (python scripts/vendor_litertjs.py --refresh)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
