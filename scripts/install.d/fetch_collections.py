"""Install the Ansible collections the playbooks use into <venv>/share/ansible/collections.

openstack.cloud 2.6.0 is the first release that works with openstacksdk >= 4.15 (which removed
`openstack.version`). PyPI ships collections only inside the `ansible` bundle (200 MB unpacked),
so this takes the one collection out of that wheel instead of installing the bundle; the wheel is
cached under ~/.cache/controlplane/wheels so fresh clones do not download it again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BUNDLE = "ansible==14.5.0"  # carries openstack.cloud 2.6.0
COLLECTIONS = {"openstack/cloud": "2.6.0"}


def installed_version(target: Path, name: str) -> str | None:
    manifest = target / "ansible_collections" / name / "MANIFEST.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["collection_info"]["version"])


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else Path(sys.prefix) / "share" / "ansible" / "collections")
    missing = {n: v for n, v in COLLECTIONS.items() if installed_version(target, n) != v}
    if not missing:
        return 0
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "controlplane" / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("ansible-14.5.0-*.whl"))
    if not wheels:
        # The bundle declares Python >= 3.12; its collections are data and work with any ansible-core.
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "--only-binary=:all:", "--python-version", "3.12", "-d", str(cache), BUNDLE],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            sys.stderr.write(done.stdout + done.stderr)
            return done.returncode
        wheels = sorted(cache.glob("ansible-14.5.0-*.whl"))
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[-1]) as bundle, tempfile.TemporaryDirectory(dir=target) as tmp:
        for name in missing:
            prefix = f"ansible_collections/{name}/"
            members = [m for m in bundle.namelist() if m.startswith(prefix)]
            bundle.extractall(tmp, members)
            final = target / "ansible_collections" / name
            if final.exists():
                shutil.rmtree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(tmp) / prefix), final)
            print(f"installed collection {name.replace('/', '.')} {missing[name]} into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
