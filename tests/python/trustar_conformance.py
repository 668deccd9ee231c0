"""Conformance: TruSTAR's official Python SDK (`trustar` on PyPI) against our TruSTAR emulator.

Usage: trustar_conformance.py URL KEY SECRET ENCLAVE_ID. Exits non-zero on the first mismatch.
"""
import sys

from trustar import TruStar, Report

url, key, secret, enclave = sys.argv[1:5]
ts = TruStar(config={
    "auth_endpoint": url + "/oauth/token",
    "api_endpoint": url + "/api/1.3",
    "user_api_key": key,
    "user_api_secret": secret,
    "client_type": "Python_SDK",
    "client_version": "1.3",
    "client_metatag": "Resilient",
    "verify": False,
})
assert ts.ping() == "pong", "ping"
report = Report(title="Resilient Incident 7: conformance",
                body="seen 192.0.2.10 and bad.example.org",
                enclave_ids=[enclave], external_id="RESILIENT7")
report = ts.submit_report(report)
assert report.id, "submit returned no id"
got = ts.get_report_details("RESILIENT7", "external")
assert got.id == report.id and got.title == "Resilient Incident 7: conformance", got.to_dict()
got.body = "now 192.0.2.11"
ts.update_report(got)
assert ts.get_report_details(report.id).body == "now 192.0.2.11"
# Tags: the SDK's deprecated add_enclave_tag now delegates to POST reports/{id}/alter-tags.
assert ts.add_enclave_tag(report.id, "resilient") == "resilient"
assert ts.alter_report_tags(report.id, ["phish", "triage"], ["resilient"]) == report.id
assert sorted(t.name for t in ts.get_enclave_tags(report.id)) == ["phish", "triage"]
assert ts.delete_enclave_tag(report.id, "triage") == report.id
assert [t.name for t in ts.get_enclave_tags(report.id)] == ["phish"]
values = [i.value for i in ts.get_indicators_for_report(report.id)]
assert values == ["192.0.2.11"], values
found = list(ts.search_indicators("192.0.2.11"))
assert found and found[0].value == "192.0.2.11", found
added = ts.add_terms_to_whitelist(["evil.example.net"])
assert [i.value for i in added] == ["evil.example.net"], added
assert "evil.example.net" in [i.value for i in ts.get_whitelist_page().items]
ts.delete_indicator_from_whitelist(added[0])
assert ts.get_whitelist_page().items == []
ts.delete_report(report.id)
try:
    ts.get_report_details(report.id)
    raise AssertionError("report still exists")
except Exception as e:  # requests.HTTPError 404
    assert "404" in str(e), e
print("trustar SDK conformance: ok")
