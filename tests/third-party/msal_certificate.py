"""One app-only sign-in with a certificate by MSAL for Python, as a whole process: the floor
exo's `certificate` method is compared with in `tests/benches/sign_in.rs`. Reads the authority,
client id, certificate file and key file from argv; prints nothing (the token is not shown).
"""

import sys

import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes

authority, client_id, certificate_file, key_file = sys.argv[1:5]
certificate = x509.load_pem_x509_certificate(open(certificate_file, "rb").read())
credential = {
    "private_key": open(key_file).read(),
    "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),
}
app = msal.ConfidentialClientApplication(
    client_id, authority=authority, client_credential=credential, instance_discovery=False)
result = app.acquire_token_for_client(scopes=["https://outlook.office365.com/.default"])
sys.exit(0 if "access_token" in result else 1)
