#!/usr/bin/env python3
"""git's post-receive hook: POST a signed push webhook to each gateway in MG_WEBHOOK_URLS.

The signature is GitHub's X-Hub-Signature-256 over the body, keyed with
MG_WEBHOOK_SECRET_VALUE; a gateway that misses it still fetches every --sync-interval.
"""

import hashlib
import hmac
import json
import os
import sys
import urllib.request

secret = os.environ["MG_WEBHOOK_SECRET_VALUE"].encode()
refs = [line.split()[2] for line in sys.stdin if line.strip()]
body = json.dumps({"ref": refs[0] if refs else None}).encode()
signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
for url in os.environ.get("MG_WEBHOOK_URLS", "").split():
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            print(f"webhook {url}: {answer.status}")
    except OSError as exc:
        print(f"webhook {url}: {exc}")
