#!/usr/bin/env python3
"""Runs IBM's `resilient-sdk codegen` on a local export file and reports what the generated package contains.

Usage (with the venv's python, where resilient-sdk is installed):

    sdk_codegen_check.py --exportfile EXPORT.res --package PKG --output DIR -- [codegen selection args...]

e.g. `-- -m fn_hello -f fn_hello -w example_hello -r "Example: Say hello" -fd hello_last_echo`.

The codegen runs in this process through resilient-sdk's own command-line entry point
(`resilient_sdk.app.main` with `sys.argv` set, as the `resilient-sdk` console script does), with one change:
the check of PyPI for a newer resilient-sdk, which every `resilient-sdk` run does over the network, is
answered with the installed version, so the test needs no network.

On success it prints one JSON object on stdout (exit 0):
  resilient_sdk_version   the installed version
  package_dir             the generated package
  files                   every generated file, relative to package_dir
  export                  objects of <pkg>/util/data/export.res: message_destinations, functions (with their
                          inputs resolved from view_items -> fields by uuid, in view order), workflows (with the
                          function steps of their XML: function name, result name, static inputs by field name,
                          scripts), rules, incident_fields, top_level_keys
  codegen_reload_data     what <pkg>/util/customize.py:codegen_reload_data() returns
  customization_data      the Definition classes customization_data() yields, and whether the ImportDefinition
                          decodes to util/data/export.res
  components              per components/*.py: FN_NAME and the documented `fn_inputs.<name>` lines
  workflow_docs           per data/wf_*.md: the function API names, result names and message destinations
                          resilient-sdk resolved from the workflow XML
  compile_errors          generated .py files that do not compile (expected: empty)
On failure it prints {"error": ..., "log": ...} on stdout and exits 2.
"""

import argparse
import base64
import contextlib
import glob
import importlib.util
import io
import json
import logging
import os
import re
import sys
import traceback
import xml.etree.ElementTree as ET

RESILIENT_BPMN_NS = "http://resilient.ibm.com/bpmn"


def fail(message, log=""):
    print(json.dumps({"error": message, "log": log}, indent=2))
    sys.exit(2)


def run_codegen(exportfile, package, output, selection):
    """Runs `resilient-sdk codegen -p PKG -e EXPORT -o DIR <selection>`; returns the captured log."""
    try:
        from resilient_sdk import app as sdk_app
        from resilient_sdk.util import sdk_helpers
    except ImportError as e:
        fail("resilient-sdk is not installed in this python ({}): {}".format(sys.executable, e))

    installed = sdk_helpers.get_resilient_sdk_version()
    # No network: resilient-sdk asks PyPI for its latest version on every run.
    sdk_helpers.get_latest_available_version = lambda: installed

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    sdk_logger = logging.getLogger("resilient_sdk_log")
    sdk_logger.addHandler(handler)

    argv = [
        "resilient-sdk", "codegen",
        "-p", package,
        "-e", exportfile,
        "-o", output,
        # a settings file that does not exist: the built-in defaults, whatever ~/.resilient holds
        "--settings", os.path.join(output, "no-sdk-settings.json"),
    ] + selection
    old_argv = sys.argv
    sys.argv = argv
    try:
        # resilient-sdk prints usage and help on stdout; our stdout is for the JSON report
        with contextlib.redirect_stdout(log):
            sdk_app.main()
    except SystemExit as e:
        # argparse errors and SDKExceptions raised while parsing end here, with status 0 or None
        if e.code not in (None, 0):
            fail("resilient-sdk codegen exited with status {}".format(e.code), log.getvalue())
    except Exception as e:  # noqa: BLE001 - report whatever codegen raised, with its trace
        fail("resilient-sdk codegen failed: {}".format(e),
             log.getvalue() + "\n" + traceback.format_exc())
    finally:
        sys.argv = old_argv
        sdk_logger.removeHandler(handler)
    return str(installed), log.getvalue()


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def workflow_steps(xml_text, functions_by_uuid, fields_by_uuid):
    """The function steps of a workflow's BPMN XML, with uuids replaced by names."""
    root = ET.fromstring(xml_text.encode("utf-8"))
    steps = []
    for element in root.iter("{%s}function" % RESILIENT_BPMN_NS):
        body = json.loads(element.text or "{}")
        static_inputs = {}
        for field_uuid, value in (body.get("inputs") or {}).items():
            field = fields_by_uuid.get(field_uuid)
            static_inputs[field["name"] if field else "<unknown field {}>".format(field_uuid)] = value
        function = functions_by_uuid.get(element.get("uuid"))
        steps.append({
            "function": function["export_key"] if function else None,
            "function_uuid": element.get("uuid"),
            "result_name": body.get("result_name"),
            "inputs": static_inputs,
            "pre_processing_script": body.get("pre_processing_script"),
            "post_processing_script": body.get("post_processing_script"),
        })
    return steps


def summarise_export(export):
    fields = export.get("fields") or []
    fields_by_uuid = {f.get("uuid"): f for f in fields}
    functions = export.get("functions") or []
    functions_by_uuid = {f.get("uuid"): f for f in functions}

    def field_summary(f):
        return {
            "name": f.get("name"),
            "input_type": f.get("input_type"),
            "required": f.get("required"),
            "values": [v.get("label") for v in (f.get("values") or [])],
            "export_key": f.get("export_key"),
        }

    out_functions = []
    for f in functions:
        inputs = []
        for item in f.get("view_items") or []:
            if item.get("field_type") != "__function":
                continue
            field = fields_by_uuid.get(item.get("content"))
            inputs.append(field_summary(field) if field else {"missing_field_uuid": item.get("content")})
        out_functions.append({
            "name": f.get("name"),
            "export_key": f.get("export_key"),
            "display_name": f.get("display_name"),
            "destination_handle": f.get("destination_handle"),
            "inputs": inputs,
        })

    return {
        "top_level_keys": sorted(export.keys()),
        "export_format_version": export.get("export_format_version"),
        "message_destinations": [
            {"programmatic_name": m.get("programmatic_name"), "name": m.get("name")}
            for m in export.get("message_destinations") or []
        ],
        "functions": out_functions,
        "workflows": [
            {
                "programmatic_name": w.get("programmatic_name"),
                "name": w.get("name"),
                "object_type": w.get("object_type"),
                "steps": workflow_steps((w.get("content") or {}).get("xml") or "<definitions/>",
                                        functions_by_uuid, fields_by_uuid),
            }
            for w in export.get("workflows") or []
        ],
        "rules": [
            {
                "name": r.get("name"),
                "type": r.get("type"),
                "object_type": r.get("object_type"),
                "workflows": r.get("workflows"),
                "message_destinations": r.get("message_destinations"),
                "conditions": r.get("conditions"),
            }
            for r in export.get("actions") or []
        ],
        "incident_fields": [field_summary(f) for f in fields if f.get("type_id") == 0],
        "incident_types": [t.get("name") for t in export.get("incident_types") or []],
    }


def summarise_workflow_doc(text):
    """API names, result names and destinations in a generated wf_<name>.md."""
    def after(heading):
        return re.findall(r"### {}\s*\n`([^`]*)`".format(re.escape(heading)), text)
    return {
        "function_api_names": after("API Name"),
        "result_names": after("Output Name"),
        "message_destinations": after("Message Destination"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exportfile", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--output", required=True, help="an existing, writable directory")
    parser.add_argument("selection", nargs=argparse.REMAINDER,
                        help="after --: codegen's selection arguments (-m, -f, -w, -r, -fd, ...)")
    args = parser.parse_args()
    selection = args.selection[1:] if args.selection[:1] == ["--"] else args.selection

    version, log = run_codegen(os.path.abspath(args.exportfile), args.package,
                               os.path.abspath(args.output), selection)

    package_dir = os.path.join(os.path.abspath(args.output), args.package)
    module_dir = os.path.join(package_dir, args.package)
    res_path = os.path.join(module_dir, "util", "data", "export.res")
    if not os.path.isfile(res_path):
        fail("resilient-sdk codegen did not write {}".format(res_path), log)

    files = sorted(
        os.path.relpath(os.path.join(d, name), package_dir)
        for d, _, names in os.walk(package_dir) for name in names
        if "__pycache__" not in d
    )

    with io.open(res_path, encoding="utf-8") as f:
        res_text = f.read()
    export = json.loads(res_text)

    compile_errors = {}
    for path in glob.glob(os.path.join(package_dir, "**", "*.py"), recursive=True):
        try:
            compile(io.open(path, encoding="utf-8").read(), path, "exec")
        except SyntaxError as e:
            compile_errors[os.path.relpath(path, package_dir)] = str(e)

    customize = load_module("generated_customize", os.path.join(module_dir, "util", "customize.py"))
    reload_data = customize.codegen_reload_data()
    definitions = list(customize.customization_data())
    imports = [d for d in definitions if type(d).__name__ == "ImportDefinition"]
    equals_res = bool(imports) and all(
        json.loads(base64.b64decode(d.value).decode("utf-8")) == export for d in imports)

    components = {}
    for path in sorted(glob.glob(os.path.join(module_dir, "components", "*.py"))):
        text = io.open(path, encoding="utf-8").read()
        fn_name = re.search(r'^FN_NAME = "([^"]*)"', text, re.M)
        if os.path.basename(path) == "__init__.py":
            continue
        components[os.path.basename(path)] = {
            "fn_name": fn_name.group(1) if fn_name else None,
            "documented_inputs": re.findall(r"^\s*-\s+fn_inputs\.(\w+)\s*$", text, re.M),
        }

    workflow_docs = {}
    for path in sorted(glob.glob(os.path.join(package_dir, "data", "wf_*.md"))):
        workflow_docs[os.path.basename(path)] = summarise_workflow_doc(io.open(path, encoding="utf-8").read())

    print(json.dumps({
        "resilient_sdk_version": version,
        "package_dir": package_dir,
        "files": files,
        "export": summarise_export(export),
        "codegen_reload_data": reload_data,
        "customization_data": {
            "definitions": [type(d).__name__ for d in definitions],
            "import_equals_export_res": equals_res,
        },
        "components": components,
        "workflow_docs": workflow_docs,
        "compile_errors": compile_errors,
        "log": log,
    }, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
