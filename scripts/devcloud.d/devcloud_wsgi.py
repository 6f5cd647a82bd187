"""gunicorn entry point for the devcloud APIs: `devcloud_wsgi:application`.

Keystone, Neutron, Nova and Cinder let oslo.config parse the process argv, which
is gunicorn's (`--bind ...`), and reject it: the worker exits with code 2 and
gunicorn restarts it in a loop. So reset sys.argv before importing the app.

  DEVCLOUD_WSGI_APP   module that defines `application` (e.g. keystone.wsgi.api)
  DEVCLOUD_WSGI_ARGV  JSON list of arguments the app should see instead (optional)
"""

import importlib
import json
import os
import sys

sys.argv = [sys.argv[0], *json.loads(os.environ.get("DEVCLOUD_WSGI_ARGV", "[]"))]
application = importlib.import_module(os.environ["DEVCLOUD_WSGI_APP"]).application
