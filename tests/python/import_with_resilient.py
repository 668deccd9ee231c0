#!/usr/bin/env python3
"""Imports an export.res into a SOAR platform with IBM's own Python libraries, as `resilient-circuits customize -y`
does for an app whose customize.py yields an ImportDefinition.

Usage (with the venv's python, where resilient-circuits is installed):

    import_with_resilient.py --exportfile EXPORT.res --config APP.CONFIG
    import_with_resilient.py --exportfile EXPORT.res --host H --port P --org ORG \
        --api-key-id ID --api-key-secret SECRET --cafile CA.pem [--resource-prefix /api]

With --config, the options are read by resilient-circuits' AppArgumentParser from the [resilient] section of that
file (APP_CONFIG_FILE is set to it, as `resilient-circuits customize` finds its config). Otherwise they are the
arguments given. Then, all in IBM's code:
  1. client = resilient.get_client(opts)                         (REST login: GET /rest/session, ...)
  2. the export file, base64-encoded, becomes a resilient.ImportDefinition (what a generated util/customize.py yields)
  3. resilient_circuits.util.resilient_customize.Customizations(client, yflag=True).load_import(definition, dist):
     POST /rest/orgs/{org}/configurations/imports, and if PENDING, PUT .../imports/{id} with status ACCEPTED,
     then grants the API key (or user) access to each imported message destination (GET+PUT /message_destinations/{id}).
The client's post/put are wrapped only to record the platform's answers.

Prints one JSON object on stdout (exit 0): the POST and PUT answers (the import DTOs), the PUT body's status,
the log lines of resilient_customize, the API key handle / user id of the client, and the message destinations
afterwards (programmatic_name, users, api_keys). On failure: {"error": ..., "log": ...}, exit 2.
"""

import argparse
import base64
import io
import json
import logging
import os
import sys
import traceback
import types


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append("{} {}: {}".format(record.levelname, record.name, record.getMessage()))


def options(args):
    if args.config:
        os.environ["APP_CONFIG_FILE"] = os.path.abspath(args.config)
        import resilient
        from resilient_circuits.app_argument_parser import AppArgumentParser
        parser = AppArgumentParser(config_file=resilient.get_config_file())
        opts, _extra = parser.parse_known_args([])
        return opts
    missing = [k for k in ("host", "port", "org", "api_key_id", "api_key_secret") if not getattr(args, k)]
    if missing:
        raise SystemExit("without --config, give --" + ", --".join(m.replace("_", "-") for m in missing))
    opts = {
        "host": args.host,
        "port": args.port,
        "org": args.org,
        "api_key_id": args.api_key_id,
        "api_key_secret": args.api_key_secret,
        "cafile": args.cafile,
    }
    if args.resource_prefix:
        opts["resource_prefix"] = args.resource_prefix
    return opts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exportfile", required=True)
    parser.add_argument("--config", help="an app.config with a [resilient] section")
    parser.add_argument("--host")
    parser.add_argument("--port")
    parser.add_argument("--org")
    parser.add_argument("--api-key-id")
    parser.add_argument("--api-key-secret")
    parser.add_argument("--cafile")
    parser.add_argument("--resource-prefix")
    parser.add_argument("--package", default="fn_hello", help="the package name shown in the log")
    args = parser.parse_args()

    recorder = Recorder()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(levelname)s [%(name)s] %(message)s")
    logging.getLogger().addHandler(recorder)

    calls = []
    try:
        import resilient
        from resilient import ImportDefinition
        from resilient_circuits.util.resilient_customize import Customizations

        client = resilient.get_client(options(args))

        def recording(method_name):
            method = getattr(client, method_name)

            def call(uri, payload, *rest, **kwargs):
                sent = json.loads(json.dumps(payload))
                answer = method(uri, payload, *rest, **kwargs)
                # a copy: load_import sets the status in the POST's answer and PUTs that same dict
                calls.append({"method": method_name.upper(), "uri": uri, "sent": sent,
                              "answer": json.loads(json.dumps(answer))})
                return answer
            return call

        client.post = recording("post")
        client.put = recording("put")

        with io.open(args.exportfile, "rb") as f:
            definition = ImportDefinition(base64.b64encode(f.read()))
        dist = types.SimpleNamespace(name=args.package, version="0.0.0")
        Customizations(client, True).load_import(definition, dist)

        destinations = client.get("/message_destinations")["entities"]
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - report whatever IBM's code raised, with its trace
        print(json.dumps({"error": "{}: {}".format(type(e).__name__, e),
                          "log": "\n".join(recorder.lines) + "\n" + traceback.format_exc(),
                          "calls": calls}, indent=2, default=str))
        sys.exit(2)

    post = next((c for c in calls if c["method"] == "POST" and c["uri"].endswith("/configurations/imports")), None)
    put = next((c for c in calls if c["method"] == "PUT" and "/configurations/imports/" in c["uri"]), None)
    print(json.dumps({
        "post": post and post["answer"],
        "put_status_sent": put and put["sent"].get("status"),
        "put": put and put["answer"],
        "calls": [{"method": c["method"], "uri": c["uri"]} for c in calls],
        "api_key_handle": getattr(client, "api_key_handle", None),
        "user_id": getattr(client, "user_id", None),
        "message_destinations": [
            {"programmatic_name": d.get("programmatic_name"), "users": d.get("users"), "api_keys": d.get("api_keys")}
            for d in destinations
        ],
        "log": recorder.lines,
    }, indent=2, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
