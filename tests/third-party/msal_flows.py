"""Drives the sandbox tenant with Microsoft's MSAL for Python, a client exo did not write.

Reads one JSON object on stdin (authority, app and user details), runs client credentials with a
certificate (SHA-1 thumbprint, and with the public certificate for x5c), the password grant,
a silent refresh, and the device code flow, and prints one JSON line per event on stdout:
`{"device": {...}}` when the device code is ready (the driver then signs in on the device-login
page), and finally `{"results": {...}}`. Tokens are never printed.
"""

import json
import sys

import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes

EXO_SCOPE = "https://outlook.office365.com/.default"


def emit(event):
    print(json.dumps(event), flush=True)


def outcome(result):
    """What the driver checks of a token response, without the tokens."""
    if "access_token" not in result:
        return {"ok": False, "error": result.get("error"), "codes": result.get("error_codes"),
                "description": (result.get("error_description") or "").splitlines()[:1]}
    return {"ok": True, "has_refresh_token": "refresh_token" in result,
            "source": result.get("token_source")}


def main():
    config = json.load(sys.stdin)
    authority = config["authority"]
    cert_pem = open(config["certificate_file"]).read()
    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    key = open(config["key_file"]).read()
    sha1 = certificate.fingerprint(hashes.SHA1()).hex()
    results = {}

    for name, credential in [
        ("client_credentials_thumbprint", {"private_key": key, "thumbprint": sha1}),
        ("client_credentials_x5c",
         {"private_key": key, "thumbprint": sha1, "public_certificate": cert_pem}),
    ]:
        app = msal.ConfidentialClientApplication(
            config["app_id"], authority=authority, client_credential=credential,
            instance_discovery=False)
        results[name] = outcome(app.acquire_token_for_client(scopes=[EXO_SCOPE]))

    # MSAL builds its user-realm discovery URL from the authority's host without the port, so
    # against a sandbox on an ephemeral port it would ask port 443. Tell it the host has no
    # federated realms (what a 404 from that endpoint would teach it); the real service's host
    # is on 443, where the lookup works.
    msal.authority.Authority._domains_without_user_realm_discovery.add(
        msal.authority.canonicalize(authority)[1])
    public = msal.PublicClientApplication(
        config["public_client_id"], authority=authority, instance_discovery=False)
    results["password"] = outcome(public.acquire_token_by_username_password(
        config["username"], config["password"], scopes=[EXO_SCOPE]))
    accounts = public.get_accounts(username=config["username"])
    refreshed = public.acquire_token_silent(
        [EXO_SCOPE], account=accounts[0], force_refresh=True) if accounts else None
    results["refresh"] = outcome(refreshed or {"error": "no account in MSAL's cache"})

    flow = public.initiate_device_flow(scopes=[EXO_SCOPE])
    if "user_code" not in flow:
        results["device_code"] = outcome(flow)
    else:
        emit({"device": {"user_code": flow["user_code"],
                         "verification_uri": flow["verification_uri"]}})
        results["device_code"] = outcome(public.acquire_token_by_device_flow(flow))
    emit({"results": results})


if __name__ == "__main__":
    main()
