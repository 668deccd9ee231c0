# -*- coding: utf-8 -*-
"""Conformance-test function component for resilient-circuits.

Loaded by an unmodified resilient-circuits through `componentsdir` in app.config (the
component loader imports every *.py file in that directory by its file name and instantiates
the first circuits component class defined in it with `opts=...`).

Function `fn_conformance_echo`:
  * yields one status message  "echo: starting"
  * returns FunctionResult({"echo": <input fn_conformance_text>})
    (the @app_function decorator wraps it in the v2 result payload:
     {"version": 2.0, "success": true, "reason": null, "content": {"echo": ...},
      "raw": null, "inputs": {...}, "metrics": {...}})

App config section / package name: [fn_conformance] (no keys required).
"""

from resilient_circuits import AppFunctionComponent, FunctionResult, StatusMessage, app_function

PACKAGE_NAME = "fn_conformance"
FN_NAME = "fn_conformance_echo"


class ConformanceEchoComponent(AppFunctionComponent):
    """Echoes its text input back; used by the Rust conformance tests."""

    def __init__(self, opts):
        super(ConformanceEchoComponent, self).__init__(opts, PACKAGE_NAME)

    @app_function(FN_NAME)
    def _fn_conformance_echo(self, fn_inputs):
        yield StatusMessage("echo: starting")
        text = getattr(fn_inputs, "fn_conformance_text", None)
        yield FunctionResult({"echo": text})
